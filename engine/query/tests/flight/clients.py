"""What real Flight SQL clients get from Weir's Flight SQL endpoint.

Run by tests/it/flight.rs with the test suite's Python:

    python clients.py PORT USER PASSWORD

Uses the ADBC Flight SQL driver (adbc-driver-flightsql, through the DB-API
of adbc-driver-manager) into pyarrow Tables and pandas DataFrames, and
pyarrow.flight with a hand-built Flight SQL command. Prints one JSON
document; the Rust test judges it.
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow.flight as flight


def any_command(type_name, query):
    """A Flight SQL command as google.protobuf.Any, encoded by hand:
    CommandStatementQuery { 1: query }."""

    def field(number, payload):
        key = bytes([(number << 3) | 2])
        n, out = len(payload), bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        return key + bytes(out) + payload

    inner = field(1, query.encode())
    return field(1, f"type.googleapis.com/arrow.flight.protocol.sql.{type_name}".encode()) + field(2, inner)


def main():
    port, user, password = sys.argv[1:4]
    uri = f"grpc://127.0.0.1:{port}"
    out = {}

    with flightsql.connect(uri, db_kwargs={"username": user, "password": password}) as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT service_name, count(*) AS spans FROM spans GROUP BY service_name ORDER BY service_name"
        )
        table = cur.fetch_arrow_table()
        out["arrow_columns"] = table.column_names
        out["arrow_rows"] = [[str(r["service_name"]), r["spans"]] for r in table.to_pylist()]

        cur.execute("SELECT count(*) AS n FROM spans WHERE service_name = $1", parameters=("checkout",))
        out["param"] = int(cur.fetch_df()["n"][0])

        cur.execute("SELECT trace_id, start_time, duration_ns, attributes FROM spans LIMIT 5")
        df = cur.fetch_df()
        out["pandas_shape"] = list(df.shape)
        out["pandas_dtypes"] = {k: str(v) for k, v in df.dtypes.items()}

        # Every column, nested dictionaries (resource attributes) included.
        cur.execute("SELECT * FROM spans LIMIT 7")
        star = cur.fetch_arrow_table()
        out["star"] = [star.num_rows, star.num_columns]
        out["star_resource"] = str(star.column("resource_attributes")[0])

        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = []
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for t in schema["db_schema_tables"] or []:
                    names.append(t["table_name"])
        out["tables"] = sorted(names)
        out["spans_schema"] = conn.adbc_get_table_schema("spans").names
        out["table_types"] = conn.adbc_get_table_types()
        info = conn.adbc_get_info()
        out["vendor"] = info.get("vendor_name")

        refused = {}
        for sql in ("DROP TABLE spans", "COPY spans TO '/tmp/weir-flight.csv'",
                    "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'"):
            try:
                cur.execute(sql)
                cur.fetch_arrow_table()
                refused[sql] = None
            except Exception as e:  # the driver's own error classes
                refused[sql] = str(e)
        out["refused"] = refused
        cur.execute("SELECT 1 + 1 AS two")
        out["after_errors"] = cur.fetch_arrow_table().to_pylist()[0]["two"]

    try:
        with flightsql.connect(uri, db_kwargs={"username": user, "password": "wrong"}) as bad:
            c = bad.cursor()
            c.execute("SELECT 1")
            c.fetch_arrow_table()
        out["wrong_password"] = None
    except Exception as e:
        out["wrong_password"] = str(e)

    # pyarrow.flight: basic authentication for a bearer token, then
    # GetFlightInfo + DoGet with a Flight SQL statement.
    client = flight.FlightClient(uri)
    header = client.authenticate_basic_token(user, password)
    options = flight.FlightCallOptions(headers=[header])
    descriptor = flight.FlightDescriptor.for_command(
        any_command("CommandStatementQuery", "SELECT count(*) AS n FROM logs")
    )
    info = client.get_flight_info(descriptor, options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    out["pyarrow_flight"] = reader.read_all().to_pylist()[0]["n"]
    try:
        client.get_flight_info(descriptor)
        out["no_token"] = None
    except flight.FlightUnauthenticatedError as e:
        out["no_token"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
