#!/usr/bin/env python3
"""Check that every recorded answer came from one complete index version.

usage: check_answers.py RECORD INDEX_ROOT RAGMAP_BIN WORKDIR

RECORD is what `ragmap bench load --record` writes: one line per answer,
"STATUS<TAB>MS<TAB>CLIENT<TAB>BODY". For every answer with status 200 the
body names its replica and index_version; each version's manifest and
catalog snapshot are fetched from the store once (through `ragmap s3 get`,
so the same endpoint and credentials), and every hit's chunk_id must be a
live chunk of the hit's key in that version. An answer that mixed
two versions, or came from a half-loaded one, names a chunk that its
version does not hold live (or under another key).

Prints one summary line, "answers N versions V replicas R: ...", and one
line per problem (the first 20). Exit 0 when there is none, 1 otherwise,
2 when the record is missing or empty.
"""
import collections
import json
import os
import sqlite3
import subprocess
import sys


def fetch(bin_path, key, path):
    subprocess.run([bin_path, "s3", "get", key, path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def live_chunks(bin_path, root, version, work):
    """{chunk_id: key} of the version's live chunks, from its catalog snapshot."""
    mpath = os.path.join(work, "m%010d.json" % version)
    fetch(bin_path, "%smanifests/%010d.json" % (root, version), mpath)
    with open(mpath) as f:
        manifest = json.load(f)
    cpath = os.path.join(work, "c%010d.sqlite" % version)
    fetch(bin_path, manifest["catalog"]["key"], cpath)
    db = sqlite3.connect(cpath)
    rows = db.execute("SELECT c.chunk_id, d.key FROM chunks c JOIN documents d USING(doc_id)"
                      " WHERE d.live = 1").fetchall()
    db.close()
    return dict(rows)


def main():
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    record, root, bin_path, work = sys.argv[1:]
    answers = []
    statuses = collections.Counter()
    try:
        with open(record, encoding="utf-8") as f:
            for line in f:
                status, _ms, _client, body = line.rstrip("\n").split("\t", 3)
                statuses[status] += 1
                if status == "200":
                    answers.append(json.loads(body))
    except OSError as e:
        print("check_answers: %s" % e, file=sys.stderr)
        return 2
    if not answers:
        print("check_answers: no answer with status 200 in %s" % record, file=sys.stderr)
        return 2
    problems = []
    by_version = collections.defaultdict(list)
    replicas = collections.Counter()
    for a in answers:
        if "index_version" not in a or "replica" not in a:
            problems.append("an answer names no index_version or replica: %.200s" % a)
            continue
        by_version[a["index_version"]].append(a)
        replicas[a["replica"]] += 1
    hits = 0
    for version, group in sorted(by_version.items()):
        try:
            live = live_chunks(bin_path, root, version, work)
        except (subprocess.CalledProcessError, KeyError, ValueError) as e:
            problems.append("version %d: cannot read its manifest or catalog: %s" % (version, e))
            continue
        for a in group:
            for h in a.get("results", []):
                hits += 1
                key = live.get(h.get("chunk_id"))
                if key != h.get("key"):
                    problems.append("version %d (replica %s): hit %s chunk %s is not a live "
                                    "chunk of that document in that version (%s)"
                                    % (version, a["replica"], h.get("key"), h.get("chunk_id"),
                                       "not live" if key is None else "it is %s's" % key))
    print("answers %d versions %d replicas %d: %d hits checked against their version's live "
          "documents; statuses %s; per replica %s; versions %d..%d"
          % (len(answers), len(by_version), len(replicas), hits, dict(statuses),
             dict(replicas), min(by_version), max(by_version)))
    for p in problems[:20]:
        print("problem: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
