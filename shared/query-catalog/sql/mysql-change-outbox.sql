-- Change events on MySQL/MariaDB, which offer Lambda no replication stream: each row change on
-- a watched table appends a row naming the table to cache_invalidation_outbox, in the writing
-- transaction, so it becomes visible exactly when the change commits (and never for a rollback).
-- The invalidator's scheduled drains read the outbox, bump each named table's tag, and delete
-- the rows they applied. TRUNCATE fires no trigger in MySQL: invalidate the tag by hand after one.
-- Statements are separated by a semicolon at the end of a line (the ingester runs them one by
-- one after loading the articles dataset, so the bulk load itself adds no outbox rows).
-- On RDS MySQL with binary logging, creating triggers needs log_bin_trust_function_creators=1
-- in the parameter group (the template sets it).

CREATE TABLE IF NOT EXISTS cache_invalidation_outbox (
  id         BIGINT AUTO_INCREMENT PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  changed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);

CREATE TRIGGER IF NOT EXISTS articles_cache_outbox_insert AFTER INSERT ON articles
  FOR EACH ROW INSERT INTO cache_invalidation_outbox (table_name) VALUES ('articles');

CREATE TRIGGER IF NOT EXISTS articles_cache_outbox_update AFTER UPDATE ON articles
  FOR EACH ROW INSERT INTO cache_invalidation_outbox (table_name) VALUES ('articles');

CREATE TRIGGER IF NOT EXISTS articles_cache_outbox_delete AFTER DELETE ON articles
  FOR EACH ROW INSERT INTO cache_invalidation_outbox (table_name) VALUES ('articles');
