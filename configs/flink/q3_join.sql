-- Nexmark-like Q3 (local item suggestion): a regular join of persons and auctions on the seller.
SET 'pipeline.name' = 'st-q3-join';
SET 'parallelism.default' = '2';

CREATE TABLE person (
  id BIGINT,
  name STRING,
  city STRING,
  state STRING
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '1000',
  'fields.id.min' = '1000', 'fields.id.max' = '6000',
  'fields.name.length' = '10', 'fields.city.length' = '8', 'fields.state.length' = '2'
);

CREATE TABLE auction (
  id BIGINT,
  seller BIGINT,
  category BIGINT,
  initial_bid BIGINT
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '3000',
  'fields.seller.min' = '1000', 'fields.seller.max' = '6000',
  'fields.category.min' = '10', 'fields.category.max' = '15'
);

CREATE TABLE out_suggestion (name STRING, city STRING, state STRING, auction BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO out_suggestion
SELECT P.name, P.city, P.state, A.id
FROM auction AS A JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA');
