-- Nexmark-like Q2 with chaining off: every operator its own vertex (filter, project, writer).
-- This variant reads from streamtune's FLIP-27 generator ('streamtune-datagen', built into the SQL runner): it
-- reports busy and idle time like every new-style source, so benchmarks/bench_calibration.py --executor flink
-- can measure its cost.
SET 'pipeline.name' = 'st-q2-unchained-flip27';
SET 'parallelism.default' = '2';
SET 'pipeline.operator-chaining.enabled' = 'false';

CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  date_time AS CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)),
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND
) WITH (
  'connector' = 'streamtune-datagen',
  'rows-per-second' = '20000',
  'fields.auction.min' = '1000', 'fields.auction.max' = '11000',
  'fields.bidder.min' = '1000', 'fields.bidder.max' = '101000',
  'fields.price.min' = '1', 'fields.price.max' = '100000',
  'fields.channel.length' = '8'
);

CREATE TABLE out_sampled (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO out_sampled SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
