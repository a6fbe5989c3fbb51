-- Change events for the invalidator: every INSERT/UPDATE/DELETE/TRUNCATE on a watched table
-- sends {"table", "operation", "keys"} so the table's tag is invalidated (O(1) in Redis).
--
-- On RDS / Aurora PostgreSQL (an IAM role on the instance allowing lambda:InvokeFunction on the
-- invalidator, and a network path to Lambda): this file creates the aws_lambda extension where
-- it is available; the invalidator's ARN goes into cache_invalidation_target (the ingester's
-- demo dataset writes it from INVALIDATOR_FUNCTION_ARN) or the setting
-- cache_invalidation.function_arn (ALTER DATABASE ... SET), which wins. Then attach the trigger
-- to each table the catalog tags (see the end, and postgres-demo-triggers.sql).
-- The invoke is asynchronous ('Event'): the write does not wait for the invalidation, and a
-- failed invoke is retried by Lambda; the cache TTL bounds staleness if everything fails.
-- A trigger runs before its transaction commits, so the invalidator may act before the new
-- rows are visible: attach row triggers as constraint triggers DEFERRABLE INITIALLY DEFERRED
-- (they fire at commit), and the invalidator bumps the tag a second time INVALIDATION_SETTLE_MS
-- later, which drops anything a read filled from the old rows in between.
--
-- Locally (no aws_lambda extension) the same payload goes out with pg_notify on channel
-- cache_invalidation, and a LISTEN forwarder hands it to the invalidator (see the tests).

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'aws_lambda') THEN
    CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;
  END IF;
END
$$;

-- At most one row: where change events go.
CREATE TABLE IF NOT EXISTS cache_invalidation_target (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  function_arn text NOT NULL
);

CREATE OR REPLACE FUNCTION cache_invalidation_payload(tg_table text, tg_op text, row_data jsonb)
RETURNS json LANGUAGE sql AS $$
  SELECT json_build_object('table', tg_table, 'operation', tg_op,
                           'keys', CASE WHEN row_data IS NULL THEN '{}'::json
                                        ELSE json_build_object('id', row_data ->> 'id') END)
$$;

CREATE OR REPLACE FUNCTION cache_invalidation_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  payload json := cache_invalidation_payload(TG_TABLE_NAME, TG_OP,
                    CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD)
                         WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE to_jsonb(NEW) END);
  arn text := coalesce(nullif(current_setting('cache_invalidation.function_arn', true), ''),
                       (SELECT function_arn FROM cache_invalidation_target));
BEGIN
  -- to_regnamespace, not to_regproc: aws_lambda.invoke is overloaded (json and jsonb payloads),
  -- and to_regproc answers NULL for an overloaded name.
  IF arn IS NOT NULL AND arn <> '' AND to_regnamespace('aws_lambda') IS NOT NULL THEN
    PERFORM aws_lambda.invoke(aws_commons.create_lambda_function_arn(arn), payload, 'Event');
  ELSE
    PERFORM pg_notify('cache_invalidation', payload::text);
  END IF;
  RETURN NULL;
END
$$;

-- Attach to each table the catalog tags, e.g.:
--   CREATE CONSTRAINT TRIGGER products_cache_invalidation AFTER INSERT OR UPDATE OR DELETE
--     ON products DEFERRABLE INITIALLY DEFERRED
--     FOR EACH ROW EXECUTE FUNCTION cache_invalidation_notify();
--   CREATE TRIGGER products_cache_invalidation_truncate AFTER TRUNCATE ON products
--     FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidation_notify();
