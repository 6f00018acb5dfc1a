"""Parse time of large manifest files: the checked loader against plain ``yaml.safe_load_all``.

    python benchmarks/parse.py                      # 5 MB and 50 MB files
    python benchmarks/parse.py --sizes 5 --json benchmarks/results/parse.json

For each size a file of Deployment manifests (block and flow style mixed, as ``kubectl`` and
people write them) is generated into a temporary directory, then, side by side in one process:

- ``safe_load_all``: PyYAML's pure-Python safe loader, which every reader used before
  (no duplicate-key, depth or alias checks);
- ``load_yaml``: ``numasched.io.files.load_yaml`` (libyaml's C parser, one event pass for depth,
  document count and alias expansion, duplicate keys refused while building);
- ``read_workloads``: the whole ``numasched place`` input path (file read, ``load_yaml``,
  unknown-field checks, validation of every manifest, one request per replica).

Each is timed once per size (the files are large; a repeat changes little) and the ratio
``safe_load_all / load_yaml`` is printed. Both loaders must return the same documents.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from numasched.io import files, limits  # noqa: E402
from numasched.io.workloads import read_workloads  # noqa: E402

DOCUMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  namespace: shop
  labels: {{app: web-{i}, tier: frontend}}
  annotations:
    numasched.io/numa: single-numa-node
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web-{i}}}
  template:
    metadata:
      labels: {{app: web-{i}}}
    spec:
      priority: {priority}
      containers:
      - name: main
        image: registry.example.com/web:1.2.{i}
        ports: [{{containerPort: 8080}}]
        env: [{{name: MODE, value: production}}]
        resources:
          requests: {{cpu: 500m, memory: 1Gi}}
          limits: {{cpu: "1", memory: 2Gi}}
"""


def generate(path: Path, megabytes: float) -> int:
    target = int(megabytes * 1_000_000)
    size = documents = 0
    with path.open("w") as out:
        while size < target:
            text = "---\n" + DOCUMENT.format(i=documents, priority=documents % 100)
            out.write(text)
            size += len(text)
            documents += 1
    return documents


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,50", help="file sizes in MB, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = []
    print(f"libyaml C loader: {'yes' if files.C_LOADER else 'no (pure-Python fallback)'}")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in (float(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"manifests-{mb:g}mb.yaml"
            documents = generate(path, mb)
            text = path.read_text()
            old, t_old = timed(lambda: [d for d in yaml.safe_load_all(text) if d is not None])
            new, t_new = timed(lambda: files.load_yaml(text, str(path)))
            if old != new:
                print("the two loaders returned different documents", file=sys.stderr)
                return 1
            del old, new
            with limits.override(max_file_bytes=max(64 << 20, path.stat().st_size + 1)):
                work, t_read = timed(lambda: read_workloads(path))
            row = {"megabytes": mb, "bytes": path.stat().st_size, "documents": documents,
                   "requests": len(work), "safe_load_all_s": round(t_old, 3),
                   "load_yaml_s": round(t_new, 3), "read_workloads_s": round(t_read, 3),
                   "speedup": round(t_old / t_new, 2)}
            rows.append(row)
            print(f"{mb:g} MB ({documents:,} documents, {len(work):,} requests): "
                  f"safe_load_all {t_old:.2f} s, load_yaml {t_new:.2f} s "
                  f"({t_old / t_new:.1f}x faster), read_workloads {t_read:.2f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "c_loader": files.C_LOADER}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
