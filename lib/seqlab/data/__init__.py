"""Data: package artifacts, the built-in datasets, preparing splits and cards, mention spans, features.

    artifacts   pinned package files: fetch, verify, cache
    catalog     the built-in datasets and their loaders
    prepare     train/validation/test Parquet splits and the dataset card (built-ins and user data)
    select      the rows a run uses: --fold, domains, --keep-labels, --limit
    tables      reading a user's CSV/TSV/JSONL/Parquet/.smi files, local or s3://
    molecules   RDKit canonicalisation of molecule data
    spans, entities, features   entity mentions: brat files, sentences, folds, hand-made features
    text        write-up 001's text cleaning (--normalize seed001)
"""
