"""The benchmark's figures printed as text, (a) to (d), by benchmarks/run.py."""


def print_report(figures: dict):
    def training_table(section, device):
        print(
            f"\n(a) training on {device}, {section['steps']} steps of"
            f" {section['batch_size']} images after {section['warmup_steps']}"
            f" warm-up steps, best of {section['repeats']}"
        )
        print(f"    {'model':<12} {'project':>10} {'torchvision':>12} {'ratio':>6}")
        for name, row in section["models"].items():
            print(
                f"    {name:<12} {row['project_images_per_s']:>7.0f}/s"
                f" {row['torchvision_images_per_s']:>9.0f}/s {row['ratio']:>5.2f}×"
            )

    def evaluation_table(section, device):
        print(f"\n(b) evaluation of {section['n_images']} test images on {device}")
        for name, row in section["models"].items():
            print(
                f"    {name:<12} first {row['first_seconds']:.2f} s,"
                f" best {row['best_seconds']:.2f} s ({row['images_per_s']:.0f}/s)"
            )

    machine = figures["machine"]
    loads = " and ".join(
        f"{load['load_average']:.1f}"
        + (
            f" ({load['cpu_pressure']:.0%} CPU pressure)"
            if load["cpu_pressure"]
            else ""
        )
        for load in (machine["load_at_start"], machine["load_at_end"])
    )
    print(
        f"\n{machine['cpu_count']} cores, {figures['threads']} PyTorch threads"
        f" ({figures['interop_threads']} inter-op), torch {machine['torch']};"
        f" load average {loads} at the start and the end"
    )
    training_table(figures["training"], "cpu")
    evaluation_table(figures["evaluation"], "cpu")
    for row in figures["experiments"].values():
        print(f"\n(c) {row['command']}")
        print(
            f"    wall {row['wall_seconds']:.1f} s = start-up"
            f" {row['startup_seconds']:.1f} + data {row['data_preparation_seconds']:.1f}"
            f" + tasks running {row['task_busy_seconds']:.1f}"
            f" + scheduling {row['scheduling_overhead_seconds']:.1f}"
            f" (of which {row['after_last_job_seconds']:.1f} after the last job)"
            f" (task sum {row['task_sum_seconds']:.1f},"
            f" critical path {row['task_critical_path_seconds']:.1f});"
            f" {row['cpu_seconds']:.0f} CPU seconds"
        )
        for job in row["jobs"]:
            extra = "".join(
                f", {key} {job[key]:.4g}"
                for key in ("threads", "train_seconds", "accuracy")
                if key in job
            )
            print(
                f"    {job['task']:<8} at {job['start_offset_seconds']:5.1f} s,"
                f" ran {job['run_seconds']:.1f} s{extra}"
            )
        if row["best_accuracy"] is not None:
            print(f"    best test accuracy {row['best_accuracy']:.4f}")
    if figures["cuda"]:
        training_table(figures["cuda"]["training"], figures["cuda"]["device"])
        evaluation_table(figures["cuda"]["evaluation"], figures["cuda"]["device"])
