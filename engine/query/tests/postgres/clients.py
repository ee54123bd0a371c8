"""What real Postgres clients get from Weir's Postgres endpoint.

Run by tests/it/postgres.rs with the test suite's Python (psycopg 3):

    python clients.py HOST PORT USER PASSWORD GRAFANA_DIR FROM TO

Prints one JSON document: the answers to queries over the simple and the
extended protocol, in text and binary, with parameters, and the shape of
each of Grafana's fixture queries. Nothing is judged here; the Rust test
compares the answers with what Weir's own SQL service returns.
"""

import json
import os
import sys

import psycopg


def main():
    host, port, user, password, grafana, start, end = sys.argv[1:8]
    out = {}
    with psycopg.connect(
        host=host, port=port, user=user, password=password, dbname="weir",
        sslmode="disable", autocommit=True,
    ) as conn:
        # Simple protocol: no parameters, text results.
        cur = conn.cursor()
        cur.execute(
            "SELECT service_name::text, count(*) AS spans FROM spans GROUP BY 1 ORDER BY 1",
            prepare=False,
        )
        out["simple"] = [list(r) for r in cur.fetchall()]
        out["simple_columns"] = [d.name for d in cur.description]

        # Simple protocol with parameters: psycopg's client-side binding
        # (ClientCursor) sends the values in the SQL text.
        cur = psycopg.ClientCursor(conn)
        cur.execute(
            "SELECT count(*) FROM spans WHERE service_name = %s AND kind = %s", ("checkout", 2)
        )
        out["param_simple"] = cur.fetchone()[0]

        # Extended protocol, a parameter, text and binary results.
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute(
                "SELECT count(*) FROM spans WHERE service_name = %s AND kind = %s",
                ("checkout", 2),
            )
            out[f"param_{'binary' if binary else 'text'}"] = cur.fetchone()[0]

        # Binary results of several types: integers, floats, text,
        # timestamps, booleans.
        cur = conn.cursor(binary=True)
        cur.execute(
            "SELECT service_name::text AS service, max(start_time) AS latest, "
            "avg(duration_ns)::double precision AS mean_ns, bool_or(status_code = 2) AS failed "
            "FROM spans WHERE service_name = %s GROUP BY 1",
            ("cart",),
        )
        service, latest, mean_ns, failed = cur.fetchone()
        out["typed"] = {
            "service": service,
            "latest_type": type(latest).__name__,
            "latest_tz": str(latest.tzinfo) if latest is not None else None,
            "mean_ns": mean_ns,
            "failed": failed,
        }

        # A prepared statement run twice with different values.
        cur = conn.cursor()
        counts = []
        for service in ("cart", "frontend"):
            cur.execute(
                "SELECT count(*) FROM spans WHERE service_name = %s", (service,), prepare=True
            )
            counts.append(cur.fetchone()[0])
        out["prepared"] = counts

        # Statements that must be refused, each with its error.
        refused = {}
        for sql in (
            "DROP TABLE spans",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "COPY spans TO '/tmp/weir-spans.csv'",
            "SET datafusion.execution.batch_size = 1",
        ):
            try:
                conn.execute(sql)
                refused[sql] = None
            except psycopg.Error as e:
                refused[sql] = {"sqlstate": e.sqlstate, "message": str(e)}
        out["refused"] = refused

        # The session still serves after errors.
        out["after_errors"] = conn.execute("SELECT 1 + 1").fetchone()[0]

        # Grafana's queries, through the extended protocol as pgx sends them.
        grafana_out = {}
        for name in sorted(os.listdir(grafana)):
            if not name.endswith(".sql"):
                continue
            with open(os.path.join(grafana, name)) as f:
                sql = f.read().replace("{FROM}", start).replace("{TO}", end)
            try:
                cur = conn.cursor(binary=True)
                cur.execute(sql.encode())
                rows = cur.fetchall() if cur.description else []
                grafana_out[name] = {
                    "columns": [d.name for d in cur.description] if cur.description else [],
                    "rows": [[str(v) for v in r] for r in rows],
                }
            except psycopg.Error as e:
                grafana_out[name] = {"error": str(e)}
        out["grafana"] = grafana_out
    print(json.dumps(out))


if __name__ == "__main__":
    main()
