-- A tumbling event-time window per channel at a different parallelism than the source (two-phase window
-- aggregate: a local pre-aggregate before the hash exchange, the global one after).
SET 'pipeline.name' = 'st-tumble-channel';
SET 'parallelism.default' = '3';

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

CREATE TABLE out_channel (channel STRING, window_end TIMESTAMP(3), bids BIGINT, volume BIGINT)
WITH ('connector' = 'blackhole');

INSERT INTO out_channel
SELECT channel, window_end, COUNT(*), SUM(price)
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '5' SECOND))
GROUP BY channel, window_start, window_end;
