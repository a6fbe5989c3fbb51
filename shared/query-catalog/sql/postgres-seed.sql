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

-- The restaurant-summary scenario: 10 restaurants, 250 reviews.
CREATE TABLE IF NOT EXISTS restaurants (
  id      integer PRIMARY KEY,
  name    text NOT NULL UNIQUE,
  cuisine text NOT NULL,
  city    text NOT NULL
);

CREATE TABLE IF NOT EXISTS reviews (
  id            bigserial PRIMARY KEY,
  restaurant_id integer NOT NULL REFERENCES restaurants (id),
  author        text NOT NULL,
  rating        smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
  body          text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS reviews_newest ON reviews (restaurant_id, created_at DESC, id DESC);
-- A client's Idempotency-Key: a retried POST stores one review (NULL: no key given).
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS request_id text UNIQUE;
-- What that request asked for (restaurant and review, hashed): the same key with another
-- request is refused instead of answering someone else's review.
ALTER TABLE reviews ADD COLUMN IF NOT EXISTS request_digest text;

-- Updates log the whole old row, so a change stream reader knows which restaurant a changed
-- row belonged to before the change (the key alone would not say).
ALTER TABLE restaurants REPLICA IDENTITY FULL;
ALTER TABLE reviews REPLICA IDENTITY FULL;

INSERT INTO restaurants (id, name, cuisine, city)
SELECT i,
       (ARRAY['Blue Fig', 'Casa Luna', 'Golden Wok', 'Harbor Grill', 'Juniper', 'Little Saigon',
              'Olive Tree', 'Saffron', 'The Copper Pot', 'Umami House'])[i],
       (ARRAY['mediterranean', 'mexican', 'chinese', 'seafood', 'nordic', 'vietnamese',
              'greek', 'indian', 'bistro', 'japanese'])[i],
       (ARRAY['Lisbon', 'Austin', 'Osaka', 'Perth', 'Oslo', 'Hanoi', 'Athens', 'Delhi', 'Lyon', 'Kyoto'])[i]
FROM generate_series(1, 10) AS i
ON CONFLICT (id) DO NOTHING;

INSERT INTO reviews (restaurant_id, author, rating, body, created_at)
SELECT 1 + i % 10, 'reviewer ' || i, 1 + (i * 7) % 5, 'Seed review ' || i,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 250) AS i
WHERE NOT EXISTS (SELECT 1 FROM reviews LIMIT 1);
