"""Learning and evaluating CNNs on MNIST with experimaestro: a tutorial"""
