-- Change triggers on the demo tables whose rows change outside the API (run after
-- postgres-change-events.sql). Idempotent. Not on reviews: the API writes those and invalidates
-- just the restaurant it touched, where a table trigger would drop every restaurant's summary.
-- Not on articles: bulk loads would send one event per row.

-- Row changes: constraint triggers deferred to commit time, so the event leaves as the
-- transaction commits rather than mid-transaction (the invalidator's second bump covers the
-- moment between the two). OR REPLACE does not apply to constraint triggers.
DROP TRIGGER IF EXISTS products_cache_invalidation ON products;
CREATE CONSTRAINT TRIGGER products_cache_invalidation
  AFTER INSERT OR UPDATE OR DELETE ON products
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION cache_invalidation_notify();
CREATE OR REPLACE TRIGGER products_cache_invalidation_truncate
  AFTER TRUNCATE ON products
  FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidation_notify();

DROP TRIGGER IF EXISTS restaurants_cache_invalidation ON restaurants;
CREATE CONSTRAINT TRIGGER restaurants_cache_invalidation
  AFTER INSERT OR UPDATE OR DELETE ON restaurants
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION cache_invalidation_notify();
CREATE OR REPLACE TRIGGER restaurants_cache_invalidation_truncate
  AFTER TRUNCATE ON restaurants
  FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidation_notify();
