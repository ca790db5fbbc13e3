"""Sums the reports of bench processes run at once (deploy/clusterbench/run.sh)."""
import json
import sys

decoder, text, reports = json.JSONDecoder(), sys.stdin.read(), []
i = 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    rep, i = decoder.raw_decode(text, i)
    reports.append(rep)
paths = {}
for rep in reports:
    for r in rep.get("results") or []:
        p = paths.setdefault(r["path"], {"sent": 0, "delivered": 0, "lost": 0, "per_second": 0.0, "p99": []})
        p["sent"] += r["sent"]
        p["delivered"] += r["delivered"]
        p["lost"] += r["lost"]
        p["per_second"] += r["per_second"]
        p["p99"].append(r["latency_ms"]["p99"])
print(f"  {len(reports)} of {sys.argv[1]} bench reports; load before: {reports[0]['machine']['load_before'] if reports else '?'}")
for path, p in paths.items():
    print(f"  {path:18} sent {p['sent']:7}  delivered {p['delivered']:7}  lost {p['lost']:5}  total {p['per_second']:8.0f}/s  p99 ms {' '.join(f'{x:.1f}' for x in p['p99'])}")
