-- Nexmark-like Q1: convert every bid's price to euros, stateless.
-- This variant reads from streamtune's FLIP-27 generator ('streamtune-datagen', built into the SQL runner), which
-- reports busy and idle time like every new-style source; behind it the sink writer chains too: one vertex.
SET 'pipeline.name' = 'st-q1-euro-flip27';
SET 'parallelism.default' = '2';

CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  date_time TIMESTAMP(3)
) WITH (
  'connector' = 'streamtune-datagen',
  'rows-per-second' = '20000',
  'fields.auction.min' = '1000', 'fields.auction.max' = '11000',
  'fields.bidder.min' = '1000', 'fields.bidder.max' = '101000',
  'fields.price.min' = '1', 'fields.price.max' = '100000'
);

CREATE TABLE out_euro (
  auction BIGINT,
  bidder BIGINT,
  price DECIMAL(23, 3),
  date_time TIMESTAMP(3)
) WITH ('connector' = 'blackhole');

INSERT INTO out_euro SELECT auction, bidder, price * 0.908, date_time FROM bid;
