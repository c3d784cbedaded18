// streamtune's SQL runner: the statements of one SQL file, run as one Flink job.
//
// Uploaded to a Flink cluster by `streamtune flink submit` and started over REST (POST /jars/<id>/run).
// Its one argument is the SQL text, base64-encoded (UTF-8), so that quotes and newlines survive the trip.
// SET 'key' = 'value' sets a table config option; INSERT statements are collected into one statement set
// (one job); every other statement (CREATE TABLE, CREATE VIEW, ...) runs at once.
//
// It also brings a table connector of its own, 'connector' = 'streamtune-datagen': the same options as Flink's
// `datagen` for the columns it fills ('rows-per-second', 'number-of-rows', 'fields.<col>.min|max|length'), but
// built on Flink's FLIP-27 DataGeneratorSource. Flink 2.3's own `datagen` table source is a legacy
// SourceFunction, which reports no busy or idle time; a FLIP-27 source does, so its cost can be measured.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceProvider;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

public final class StreamtuneSqlRunner {
    private static final Pattern SET =
            Pattern.compile("(?is)^SET\\s+'((?:[^']|'')*)'\\s*=\\s*'((?:[^']|'')*)'$");

    private StreamtuneSqlRunner() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            throw new IllegalArgumentException("expected one argument: the SQL text, base64-encoded");
        }
        String sql = new String(Base64.getDecoder().decode(args[0]), StandardCharsets.UTF_8);
        TableEnvironment env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        StatementSet inserts = env.createStatementSet();
        int count = 0;
        for (String statement : split(sql)) {
            String upper = statement.toUpperCase(Locale.ROOT);
            if (upper.startsWith("SET")) {
                Matcher m = SET.matcher(statement);
                if (!m.matches()) {
                    throw new IllegalArgumentException("expected SET 'key' = 'value', got: " + statement);
                }
                env.getConfig().set(m.group(1).replace("''", "'"), m.group(2).replace("''", "'"));
            } else if (upper.startsWith("INSERT")) {
                inserts.addInsertSql(statement);
                count++;
            } else {
                env.executeSql(statement);
            }
        }
        if (count == 0) {
            throw new IllegalArgumentException("the SQL has no INSERT statement: there is no job to run");
        }
        inserts.execute();
    }

    /** Statements separated by ';', outside quotes and comments; comments dropped, blanks skipped. */
    static List<String> split(String sql) {
        List<String> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        int i = 0;
        int n = sql.length();
        while (i < n) {
            char c = sql.charAt(i);
            if (c == '\'' || c == '"' || c == '`') {
                int end = i + 1;
                while (end < n) {
                    if (sql.charAt(end) == c) {
                        if (end + 1 < n && sql.charAt(end + 1) == c) {
                            end += 2;
                            continue;
                        }
                        break;
                    }
                    end++;
                }
                current.append(sql, i, Math.min(end + 1, n));
                i = end + 1;
            } else if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
                while (i < n && sql.charAt(i) != '\n') {
                    i++;
                }
            } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
                int end = sql.indexOf("*/", i + 2);
                i = end < 0 ? n : end + 2;
                current.append(' ');
            } else if (c == ';') {
                add(out, current);
                i++;
            } else {
                current.append(c);
                i++;
            }
        }
        add(out, current);
        return out;
    }

    private static void add(List<String> out, StringBuilder current) {
        String statement = current.toString().trim();
        if (!statement.isEmpty()) {
            out.add(statement);
        }
        current.setLength(0);
    }

    /** The `streamtune-datagen` table connector (found by Java's ServiceLoader through the jar's META-INF/services). */
    public static final class GeneratorFactory implements DynamicTableSourceFactory {
        public GeneratorFactory() {}

        @Override
        public String factoryIdentifier() {
            return "streamtune-datagen";
        }

        @Override
        public Set<ConfigOption<?>> requiredOptions() {
            return Collections.emptySet();
        }

        @Override
        public Set<ConfigOption<?>> optionalOptions() {
            return Collections.emptySet();
        }

        @Override
        public DynamicTableSource createDynamicTableSource(Context context) {
            Map<String, String> options = context.getCatalogTable().getOptions();
            RowType row = (RowType) context.getPhysicalRowDataType().getLogicalType();
            List<String> names = row.getFieldNames();
            int n = names.size();
            long[] min = new long[n];
            long[] max = new long[n];
            int[] length = new int[n];
            for (int i = 0; i < n; i++) {
                LogicalTypeRoot root = row.getTypeAt(i).getTypeRoot();
                if (root != LogicalTypeRoot.BIGINT && root != LogicalTypeRoot.INTEGER && root != LogicalTypeRoot.VARCHAR
                        && root != LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE) {
                    throw new IllegalArgumentException("streamtune-datagen fills BIGINT, INT, STRING and TIMESTAMP columns; column "
                            + names.get(i) + " is " + row.getTypeAt(i));
                }
                String prefix = "fields." + names.get(i) + ".";
                min[i] = Long.parseLong(options.getOrDefault(prefix + "min", "0"));
                max[i] = Long.parseLong(options.getOrDefault(prefix + "max", "1000000"));
                length[i] = Integer.parseInt(options.getOrDefault(prefix + "length", "8"));
                if (max[i] < min[i]) {
                    throw new IllegalArgumentException(prefix + "max is below " + prefix + "min");
                }
            }
            double rate = Double.parseDouble(options.getOrDefault("rows-per-second", "10000"));
            long rows = Long.parseLong(options.getOrDefault("number-of-rows", String.valueOf(Long.MAX_VALUE)));
            return new GeneratorTableSource(row, min, max, length, rate, rows);
        }
    }

    static final class GeneratorTableSource implements ScanTableSource {
        private final RowType row;
        private final long[] min;
        private final long[] max;
        private final int[] length;
        private final double rate;
        private final long rows;

        GeneratorTableSource(RowType row, long[] min, long[] max, int[] length, double rate, long rows) {
            this.row = row;
            this.min = min;
            this.max = max;
            this.length = length;
            this.rate = rate;
            this.rows = rows;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return ChangelogMode.insertOnly();
        }

        @Override
        public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
            RateLimiterStrategy limit = rate > 0 ? RateLimiterStrategy.perSecond(rate) : RateLimiterStrategy.noOp();
            return SourceProvider.of(new DataGeneratorSource<>(
                    new RowGenerator(row, min, max, length), new ManySplits(0, rows - 1), limit, InternalTypeInfo.of(row)));
        }

        @Override
        public DynamicTableSource copy() {
            return new GeneratorTableSource(row, min, max, length, rate, rows);
        }

        @Override
        public String asSummaryString() {
            return "streamtune-datagen";
        }
    }

    /**
     * The row numbers cut into SPLITS pieces whatever the first parallelism: Flink's sequence source cuts them
     * into as many as the first deployment's subtasks, so after a rescale up the new subtasks find no piece,
     * finish, and the next rescale fails the job ("partially finished vertices"). Each subtask reads one piece
     * (enough rows to run for ever), so the source rescales freely up to SPLITS subtasks.
     */
    static final class ManySplits extends NumberSequenceSource {
        private static final long serialVersionUID = 1L;
        static final int SPLITS = 128; // Flink's default max parallelism

        ManySplits(long from, long to) {
            super(from, to);
        }

        @Override
        protected List<NumberSequenceSplit> splitNumberRange(long from, long to, int numSplits) {
            return super.splitNumberRange(from, to, Math.max(numSplits, SPLITS));
        }
    }

    /** One row per sequence number: uniform integers in [min, max], random lower-case strings, timestamps of now. */
    static final class RowGenerator implements GeneratorFunction<Long, RowData> {
        private static final long serialVersionUID = 1L;
        private final boolean[] text;
        private final long[] min;
        private final long[] max;
        private final int[] length;
        private final boolean[] narrow;
        private final boolean[] time;
        private transient Random random;

        RowGenerator(RowType row, long[] min, long[] max, int[] length) {
            int n = row.getFieldCount();
            this.text = new boolean[n];
            this.narrow = new boolean[n];
            this.time = new boolean[n];
            for (int i = 0; i < n; i++) {
                LogicalType type = row.getTypeAt(i);
                time[i] = type.getTypeRoot() == LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE;
                text[i] = type.getTypeRoot() == LogicalTypeRoot.VARCHAR;
                narrow[i] = type.getTypeRoot() == LogicalTypeRoot.INTEGER;
            }
            this.min = min;
            this.max = max;
            this.length = length;
        }

        @Override
        public RowData map(Long index) {
            if (random == null) {
                random = new Random(index);
            }
            GenericRowData out = new GenericRowData(text.length);
            for (int i = 0; i < text.length; i++) {
                if (text[i]) {
                    char[] chars = new char[length[i]];
                    for (int c = 0; c < chars.length; c++) {
                        chars[c] = (char) ('a' + random.nextInt(26));
                    }
                    out.setField(i, StringData.fromString(new String(chars)));
                } else if (time[i]) {
                    out.setField(i, TimestampData.fromEpochMillis(System.currentTimeMillis()));
                } else {
                    long value = min[i] + (long) (random.nextDouble() * (max[i] - min[i] + 1));
                    out.setField(i, narrow[i] ? (Object) (int) value : (Object) value);
                }
            }
            return out;
        }
    }
}
