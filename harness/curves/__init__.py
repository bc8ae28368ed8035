"""A retrain's early verdict: its curves against reference curves, judged at every log and evaluation point.

- logs.py: mmseg's training logs read (`.log.json`, the text `.log`, a `repro train` run folder);
- references.py: where reference curves come from (a file, a URL, an earlier run, the built-in ones), each hashed;
- setup.py: the run's setup against a reference's (batch, crop, iterations, optimizer, lr, schedule, SyncBN, fp16);
- track.py: on track / off track / inconclusive at each point, with bands from the references' spread;
- cost.py: GPU-hours used and projected.
"""
