-- Demo schema and seed for PostgreSQL. Idempotent: safe to run again.

-- The reference slow query: sleeps 5 seconds, then returns the server version.
CREATE OR REPLACE FUNCTION slow_version() RETURNS text
LANGUAGE sql VOLATILE AS $$
  SELECT pg_sleep(5);
  SELECT version();
$$;

CREATE TABLE IF NOT EXISTS products (
  id           integer PRIMARY KEY,
  name         text NOT NULL,
  category     text NOT NULL,
  price        numeric(10, 2) NOT NULL,
  stock        integer NOT NULL,
  discontinued boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL,
  notes        text
);

INSERT INTO products (id, name, category, price, stock, discontinued, created_at, notes)
SELECT i,
       'Product ' || i,
       (ARRAY['books', 'garden', 'kitchen', 'tools', 'toys'])[1 + i % 5],
       ((i * 37) % 500) + 0.99,
       (i * 13) % 50,
       i % 11 = 0,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 day',
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'note ' || i END
FROM generate_series(1, 60) AS i
ON CONFLICT (id) DO NOTHING;
