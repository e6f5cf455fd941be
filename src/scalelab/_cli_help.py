"""The examples under each command's --help (text only: the CLI imports this at start-up)."""

EXAMPLES = {
    "scalelab": """examples:
  scalelab study list                    the built-in studies
  scalelab study run input-scaling       run one (results go to ./scalelab.db)
  scalelab explain input-scaling         the answer per level, then the findings
  scalelab report input-scaling          one self-contained HTML page
  scalelab ls                            what the store holds
  scalelab COMMAND --help                each command's options and examples""",
    "run": """examples:
  scalelab run my-study.toml
  scalelab run my-study.toml --set seeds=3 --set train.epochs=1 --db /tmp/try.db
  scalelab run my-study.toml --probes standard --device cuda""",
    "study": """examples:
  scalelab study list
  scalelab study spec input-scaling > my-study.toml   start from a built-in
  scalelab study run feature-scales --set seeds=3""",
    "study list": "example:\n  scalelab study list",
    "study run": """examples:
  scalelab study run input-scaling
  scalelab study run input-scaling --set seeds=10 --set train.epochs=2
  scalelab study run input-scaling > log.txt 2>&1   progress as plain lines""",
    "study spec": "example:\n  scalelab study spec input-scaling > my-study.toml",
    "show": """examples:
  scalelab show input-scaling
  scalelab show input-scaling --format json | jq '.[0].test_accuracy'
  scalelab show input-scaling --format csv > summary.csv""",
    "report": """examples:
  scalelab report input-scaling          writes reports/input-scaling.html
  scalelab report input-scaling -o r.html --png figs --band minmax""",
    "explain": """examples:
  scalelab explain input-scaling
  scalelab trials input-scaling          the trial ids, then:
  scalelab explain input-scaling --trial 7
  scalelab explain input-scaling --format json
  scalelab explain input-scaling --verify       each cause's remedy, measured""",
    "verify": """examples:
  scalelab verify input-scaling          each cause's remedy next to it, 5 seeds, stored as input-scaling.verify
  scalelab verify input-scaling --executor ray --format json""",
    "ls": "examples:\n  scalelab ls\n  scalelab ls --db other.db",
    "trials": "examples:\n  scalelab trials input-scaling\n  scalelab trials input-scaling --format csv",
    "export": """examples:
  scalelab export input-scaling > runs.csv     one row per trial × epoch
  scalelab export input-scaling --format parquet -o runs.parquet
  in Python: scalelab.Store("scalelab.db").to_dataframe("input-scaling")""",
    "predict": """examples:
  scalelab study run trajectories --keep final      keep every trial's trained parameters
  scalelab trials trajectories                      the trial ids
  scalelab predict trajectories --trial 7 --input tracks.npz -o futures.npz
  scalelab predict trajectories --trial 7 --input tracks.npz --samples 20 -o futures.npz
  in Python: m = scalelab.load("trajectories", 7); m.predict(X); m.sample(X, 20)""",
    "equivalence": """examples:
  scalelab equivalence --input-scale 255 --optimizer adam
  scalelab equivalence --input-scale 1/255 --optimizer sgd --steps 100 --dataset digits""",
    "data": "examples:\n  scalelab data check fashion-mnist\n  scalelab data fetch fashion-mnist",
    "data fetch": "example:\n  scalelab data fetch fashion-mnist --dest ~/data/fashion-mnist",
    "data check": "example:\n  scalelab data check fashion-mnist --data-dir ~/data/fashion-mnist",
}
