using System.Globalization;
using System.Text;

namespace Lodestar.AspNetCore.Tests.Infrastructure;

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4, written from the format's grammar: it rejects
/// anything the format does not allow (bad names, bad escapes, samples before their TYPE, a family split in two,
/// duplicate series, histogram series without their family) instead of guessing.
/// </summary>
internal static class ExpositionParser
{
    public static IReadOnlyDictionary<string, Family> Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("The exposition must end with a line feed.");
        }

        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        Family? current = null;
        var lineNumber = 0;
        foreach (var line in text.Split('\n')[..^1])
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.Contains('\r', StringComparison.Ordinal))
            {
                throw Error(lineNumber, "carriage return");
            }

            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[0] == "#" && parts[1] is "HELP" or "TYPE")
                {
                    var name = parts[2];
                    RequireMetricName(name, lineNumber);
                    if (current?.Name != name)
                    {
                        if (current is not null)
                        {
                            finished.Add(current.Name);
                        }

                        if (finished.Contains(name) || families.ContainsKey(name))
                        {
                            throw Error(lineNumber, $"family {name} appears twice");
                        }

                        current = new Family(name);
                        families.Add(name, current);
                    }

                    if (parts[1] == "HELP")
                    {
                        if (current.Help is not null)
                        {
                            throw Error(lineNumber, "second HELP");
                        }

                        current.Help = UnescapeHelp(parts.Length == 4 ? parts[3] : "", lineNumber);
                    }
                    else
                    {
                        if (current.Type is not null || current.Samples.Count > 0)
                        {
                            throw Error(lineNumber, "TYPE after samples or twice");
                        }

                        if (parts.Length != 4 || parts[3] is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                        {
                            throw Error(lineNumber, "bad TYPE");
                        }

                        current.Type = parts[3];
                    }
                }

                continue; // other comments are allowed
            }

            var sample = ParseSample(line, lineNumber);
            if (current is null || !BelongsTo(sample.Name, current))
            {
                throw Error(lineNumber, $"sample {sample.Name} outside its family's TYPE block");
            }

            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}";
            if (current.Samples.Any(s => s.Key == key))
            {
                throw Error(lineNumber, $"duplicate series {key}");
            }

            current.Samples.Add(sample with { Key = key });
        }

        foreach (var family in families.Values)
        {
            if (family.Type == "counter" && !family.Name.EndsWith("_total", StringComparison.Ordinal))
            {
                throw new FormatException($"counter {family.Name} does not end in _total");
            }

            if (family.Type == "histogram")
            {
                CheckHistogram(family);
            }
        }

        return families;
    }

    private static bool BelongsTo(string sampleName, Family family) => family.Type switch
    {
        "histogram" => sampleName == family.Name + "_bucket" || sampleName == family.Name + "_sum" || sampleName == family.Name + "_count",
        "summary" => sampleName == family.Name || sampleName == family.Name + "_sum" || sampleName == family.Name + "_count",
        _ => sampleName == family.Name,
    };

    /// <summary>Buckets: le ascending, counts non-decreasing, +Inf last and equal to _count, _sum present, per label set.</summary>
    private static void CheckHistogram(Family family)
    {
        var bySeries = family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)));
        foreach (var series in bySeries)
        {
            var buckets = series.Where(s => s.Name == family.Name + "_bucket").ToList();
            var count = series.SingleOrDefault(s => s.Name == family.Name + "_count") ?? throw new FormatException($"{family.Name}{{{series.Key}}} has no _count");
            _ = series.SingleOrDefault(s => s.Name == family.Name + "_sum") ?? throw new FormatException($"{family.Name}{{{series.Key}}} has no _sum");
            if (buckets.Count == 0 || buckets[^1].Labels.GetValueOrDefault("le") != "+Inf")
            {
                throw new FormatException($"{family.Name}{{{series.Key}}} does not end with an le=\"+Inf\" bucket");
            }

            var previousBound = double.NegativeInfinity;
            var previousCount = 0d;
            foreach (var bucket in buckets)
            {
                var bound = ParseFloat(bucket.Labels.GetValueOrDefault("le") ?? throw new FormatException("bucket without le"), 0);
                if (bound <= previousBound)
                {
                    throw new FormatException($"{family.Name} buckets not in ascending le order");
                }

                if (bucket.Value < previousCount)
                {
                    throw new FormatException($"{family.Name} bucket counts decrease");
                }

                previousBound = bound;
                previousCount = bucket.Value;
            }

            if (buckets[^1].Value != count.Value)
            {
                throw new FormatException($"{family.Name}: +Inf bucket {buckets[^1].Value} != _count {count.Value}");
            }
        }
    }

    private static Sample ParseSample(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        RequireMetricName(name, lineNumber);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }

                var start = i;
                while (i < line.Length && line[i] != '=')
                {
                    i++;
                }

                var labelName = line[start..i];
                if (!IsLabelName(labelName))
                {
                    throw Error(lineNumber, $"bad label name '{labelName}'");
                }

                if (i + 1 >= line.Length || line[i + 1] != '"')
                {
                    throw Error(lineNumber, "label value not quoted");
                }

                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw Error(lineNumber, "unterminated label value");
                    }

                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }

                    if (c == '\\')
                    {
                        if (i >= line.Length)
                        {
                            throw Error(lineNumber, "dangling backslash");
                        }

                        var escaped = line[i++];
                        value.Append(escaped switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw Error(lineNumber, $"bad escape \\{escaped}"),
                        });
                        continue;
                    }

                    value.Append(c);
                }

                if (!labels.TryAdd(labelName, value.ToString()))
                {
                    throw Error(lineNumber, $"label {labelName} twice");
                }

                if (i < line.Length && line[i] == ',')
                {
                    i++;
                }
                else if (i >= line.Length || line[i] != '}')
                {
                    throw Error(lineNumber, "expected , or }");
                }
            }
        }

        if (i >= line.Length || line[i] != ' ')
        {
            throw Error(lineNumber, "expected one space before the value");
        }

        var rest = line[(i + 1)..].Split(' ');
        if (rest.Length is < 1 or > 2 || rest[0].Length == 0)
        {
            throw Error(lineNumber, "expected a value and an optional timestamp");
        }

        return new Sample(name, labels, ParseFloat(rest[0], lineNumber), "");
    }

    private static double ParseFloat(string text, int lineNumber)
    {
        switch (text)
        {
            case "+Inf":
                return double.PositiveInfinity;
            case "-Inf":
                return double.NegativeInfinity;
            case "NaN":
                return double.NaN;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || text.Contains(',', StringComparison.Ordinal))
        {
            throw Error(lineNumber, $"bad float '{text}'");
        }

        return value;
    }

    private static string UnescapeHelp(string text, int lineNumber)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\')
            {
                sb.Append(text[i]);
                continue;
            }

            if (++i >= text.Length)
            {
                throw Error(lineNumber, "dangling backslash in HELP");
            }

            sb.Append(text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                _ => throw Error(lineNumber, $"bad HELP escape \\{text[i]}"),
            });
        }

        return sb.ToString();
    }

    private static void RequireMetricName(string name, int lineNumber)
    {
        if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] is '_' or ':') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':'))
        {
            throw Error(lineNumber, $"bad metric name '{name}'");
        }
    }

    private static bool IsLabelName(string name)
        => name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !name.StartsWith("__", StringComparison.Ordinal);

    private static FormatException Error(int line, string what) => new($"line {line}: {what}");

    internal sealed class Family(string name)
    {
        public string Name { get; } = name;

        public string? Help { get; set; }

        public string? Type { get; set; }

        public List<Sample> Samples { get; } = [];
    }

    internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value, string Key);
}
