using System.Globalization;
using System.Text;

namespace Lodestar.AspNetCore.Metrics.Internal;

/// <summary>
/// The Prometheus text exposition format (version 0.0.4): metric and label names, escaping and number formatting,
/// with OpenTelemetry's rules for turning instrument names and units into Prometheus names.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The content type of the text format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>
    /// Builds the metric family name: the instrument name with every character outside <c>[a-zA-Z0-9_:]</c> turned
    /// into <c>_</c> (so dots become underscores), then the unit (<c>s</c> → <c>_seconds</c>, <c>By</c> →
    /// <c>_bytes</c>; annotations in braces such as <c>{request}</c> add nothing), then <c>_total</c> for counters.
    /// </summary>
    public static string MetricName(string instrumentName, string? unit, bool isCounter)
    {
        var name = Sanitize(instrumentName, allowColon: true);
        var unitSuffix = UnitSuffix(unit);
        if (unitSuffix.Length > 0 && !name.EndsWith("_" + unitSuffix, StringComparison.Ordinal) && !name.Contains("_" + unitSuffix + "_", StringComparison.Ordinal))
        {
            name += "_" + unitSuffix;
        }

        if (isCounter && !name.EndsWith("_total", StringComparison.Ordinal))
        {
            name += "_total";
        }

        return name;
    }

    /// <summary>Builds a label name: every character outside <c>[a-zA-Z0-9_]</c> becomes <c>_</c>; a leading digit gets a <c>_</c> before it.</summary>
    public static string LabelName(string key) => Sanitize(key, allowColon: false);

    /// <summary>Maps a UCUM unit to its Prometheus suffix, or an empty string when it adds none.</summary>
    public static string UnitSuffix(string? unit)
    {
        if (string.IsNullOrWhiteSpace(unit))
        {
            return "";
        }

        // Annotations in braces ("{request}") carry no unit; drop them wherever they appear.
        var sb = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{')
            {
                depth++;
            }
            else if (c == '}')
            {
                depth = Math.Max(0, depth - 1);
            }
            else if (depth == 0)
            {
                sb.Append(c);
            }
        }

        var bare = sb.ToString().Trim();
        if (bare.Length == 0 || bare == "1")
        {
            return "";
        }

        var slash = bare.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && slash < bare.Length - 1)
        {
            var per = PerUnit(bare[(slash + 1)..]);
            var main = MainUnit(bare[..slash]);
            return Sanitize(main + "_per_" + per, allowColon: false).Trim('_');
        }

        return Sanitize(MainUnit(bare), allowColon: false).Trim('_');
    }

    /// <summary>Escapes a label value: backslash, double quote and line feed.</summary>
    public static void AppendLabelValue(StringBuilder sb, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }

    /// <summary>Escapes HELP text: backslash and line feed.</summary>
    public static void AppendHelp(StringBuilder sb, string help)
    {
        foreach (var c in help)
        {
            switch (c)
            {
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }

    /// <summary>Formats a sample value or bucket bound as Go's ParseFloat reads it: shortest round trip, <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>.</summary>
    public static string FormatDouble(double value)
    {
        if (double.IsNaN(value))
        {
            return "NaN";
        }

        if (double.IsPositiveInfinity(value))
        {
            return "+Inf";
        }

        if (double.IsNegativeInfinity(value))
        {
            return "-Inf";
        }

        return value.ToString("R", CultureInfo.InvariantCulture);
    }

    private static string MainUnit(string unit) => unit switch
    {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "bit" => "bits",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => unit,
    };

    private static string PerUnit(string unit) => unit switch
    {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => MainUnit(unit),
    };

    private static string Sanitize(string name, bool allowColon)
    {
        var sb = new StringBuilder(name.Length + 1);
        foreach (var c in name)
        {
            var valid = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' || (allowColon && c == ':');
            var next = valid ? c : '_';

            // Collapse runs of underscores that sanitizing creates ("a..b" → "a_b").
            if (next == '_' && sb.Length > 0 && sb[^1] == '_' && !valid)
            {
                continue;
            }

            sb.Append(next);
        }

        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
        {
            sb.Insert(0, '_');
        }

        return sb.ToString();
    }
}
