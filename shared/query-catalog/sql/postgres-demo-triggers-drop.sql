-- With INVALIDATION_SOURCE=logical the invalidator reads committed changes from a replication
-- slot: the demo tables carry no change trigger. Removes the ones trigger mode attached.
DROP TRIGGER IF EXISTS products_cache_invalidation ON products;
DROP TRIGGER IF EXISTS products_cache_invalidation_truncate ON products;
DROP TRIGGER IF EXISTS restaurants_cache_invalidation ON restaurants;
DROP TRIGGER IF EXISTS restaurants_cache_invalidation_truncate ON restaurants;
