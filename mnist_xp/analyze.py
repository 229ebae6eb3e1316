import pandas as pd


def experiment_table(workdir):
    return pd.DataFrame()


def print_table(t):
    print(t)
