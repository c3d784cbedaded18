// streamtune's SQL runner: the statements of one SQL file, run as one Flink job.
//
// Uploaded to a Flink cluster by `streamtune flink submit` and started over REST (POST /jars/<id>/run).
// Its one argument is the SQL text, base64-encoded (UTF-8), so that quotes and newlines survive the trip.
// SET 'key' = 'value' sets a table config option; INSERT statements are collected into one statement set
// (one job); every other statement (CREATE TABLE, CREATE VIEW, ...) runs at once.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;

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
}
