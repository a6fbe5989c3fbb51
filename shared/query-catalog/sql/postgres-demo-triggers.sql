-- Change triggers on the demo tables whose rows change outside the API (run after
-- postgres-change-events.sql). Idempotent. Not on reviews: the API writes those and invalidates
-- just the restaurant it touched, where a table trigger would drop every restaurant's summary.
-- Not on articles: bulk loads would send one event per row.

CREATE OR REPLACE TRIGGER products_cache_invalidation
  AFTER INSERT OR UPDATE OR DELETE ON products
  FOR EACH ROW EXECUTE FUNCTION cache_invalidation_notify();
CREATE OR REPLACE TRIGGER products_cache_invalidation_truncate
  AFTER TRUNCATE ON products
  FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidation_notify();

CREATE OR REPLACE TRIGGER restaurants_cache_invalidation
  AFTER INSERT OR UPDATE OR DELETE ON restaurants
  FOR EACH ROW EXECUTE FUNCTION cache_invalidation_notify();
CREATE OR REPLACE TRIGGER restaurants_cache_invalidation_truncate
  AFTER TRUNCATE ON restaurants
  FOR EACH STATEMENT EXECUTE FUNCTION cache_invalidation_notify();
