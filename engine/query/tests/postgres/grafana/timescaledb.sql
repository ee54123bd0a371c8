select 1 from pg_extension where extname = 'timescaledb'
