-- An aggregate without GROUP BY: Flink sends every record to one subtask (the GLOBAL ship strategy).
SET 'pipeline.name' = 'st-global-count';
SET 'parallelism.default' = '2';

CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  date_time AS CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)),
  WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '20000',
  'fields.auction.min' = '1000', 'fields.auction.max' = '11000',
  'fields.bidder.min' = '1000', 'fields.bidder.max' = '101000',
  'fields.price.min' = '1', 'fields.price.max' = '100000',
  'fields.channel.length' = '8'
);

CREATE TABLE out_total (bids BIGINT, volume BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO out_total SELECT COUNT(*), SUM(price) FROM bid;
