"""xpkit: what an experimaestro experiment needs besides its model, its data
and its tasks, for any model and any data.

Copy this folder unchanged into your project. Each module is a few plain
functions or small classes that an experiment or a task calls:

- before any job: :mod:`~xpkit.checks` (keys and values of the YAML, one
  line per mistake), :mod:`~xpkit.grid` (the values to sweep),
  :mod:`~xpkit.datasets` (a datamaestro dataset ready, or one line why not);
- in a task: :mod:`~xpkit.speed` (seed, device, threads),
  :mod:`~xpkit.batches` (DataLoaders whose order resumes exactly),
  :mod:`~xpkit.checkpoint` (checkpoints, time limits, a full disk);
- where jobs run: :mod:`~xpkit.launchers` (this machine or SLURM, cores and
  GPUs), with :mod:`~xpkit.launcher_support`, :mod:`~xpkit.slurm_polling`
  and :mod:`~xpkit.gpus`; :mod:`~xpkit.configure` sets experimaestro up;
- while the jobs run: :mod:`~xpkit.waiting` (Ctrl+C says what goes on);
- after: :mod:`~xpkit.analyze` (the results table, seeds, figures,
  TensorBoard links), :mod:`~xpkit.tensorboard_service`,
  :mod:`~xpkit.export_action`; :mod:`~xpkit.upstream_warnings`.

What the results table, the TensorBoard links and the export action read
comes from experimaestro's records of a run (job states, tags, parameters),
and from these declarations of your tasks:

- the task that learns declares ``summary_path`` (a JSON file with
  ``validation_accuracy``, ``validation_loss`` and ``train_seconds``) and
  ``tensorboard_path`` (its TensorBoard folder, where ``curves.png`` reads
  the scalars ``validation/accuracy`` and ``validation/loss``), and writes
  the learnt parameters to ``parameters.pth`` in its job folder (the file the
  export action copies);
- the task that evaluates declares ``results_path`` (a JSON file with
  ``accuracy`` and ``loss`` on the test set);
- both carry the same tags (the grid point); several seeds are told apart by
  a ``seed`` tag.

Environment variables: ``XPKIT_LAUNCHER``, ``XPKIT_SLURM_POLL``,
``XPKIT_SLURM_REPORT`` (see ``docs/launchers.md``); ``XPKIT_CORES`` is set by
the local launcher for :mod:`~xpkit.speed`.
"""
