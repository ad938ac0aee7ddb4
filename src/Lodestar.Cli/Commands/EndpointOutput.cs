using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Lodestar.Endpoints;

namespace Lodestar.Cli.Commands;

/// <summary>The output formats of <c>resolve</c> and <c>watch</c> (<c>-o table|wide|json|yaml</c>).</summary>
internal enum OutputFormat
{
    Table,
    Wide,
    Json,
    Yaml,
}

internal sealed record EndpointDto(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("port")] int Port,
    [property: JsonPropertyName("scheme")] string? Scheme,
    [property: JsonPropertyName("weight")] int Weight,
    [property: JsonPropertyName("priority")] int Priority,
    [property: JsonPropertyName("zone")] string? Zone,
    [property: JsonPropertyName("metadata")] IReadOnlyDictionary<string, string> Metadata)
{
    public static EndpointDto From(DiscoveredEndpoint e) => new(e.Host, e.Port, e.Scheme, e.Weight, e.Priority, e.Zone, e.Metadata);
}

internal sealed record ResolveDto(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("endpoints")] IReadOnlyList<EndpointDto> Endpoints);

internal sealed record WatchEventDto(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("endpoints")] IReadOnlyList<EndpointDto>? Endpoints,
    [property: JsonPropertyName("error")] string? Error);

/// <summary>Writes endpoint sets in each output format.</summary>
internal static class EndpointOutput
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    private static readonly JsonSerializerOptions s_indented = new(Json) { WriteIndented = true };

    /// <summary>Reads <c>-o</c> and its alias <c>--json</c>.</summary>
    public static OutputFormat Format(ParseResult parseResult)
    {
        var output = parseResult.GetValue(CliOptions.Output);
        if (parseResult.GetValue(CliOptions.Json))
        {
            return output is null or "json" ? OutputFormat.Json : throw new CliException($"--json is -o json; it cannot be combined with -o {output}.");
        }

        return output switch
        {
            "wide" => OutputFormat.Wide,
            "json" => OutputFormat.Json,
            "yaml" => OutputFormat.Yaml,
            _ => OutputFormat.Table,
        };
    }

    public static string ResolveJson(EndpointSet set)
        => JsonSerializer.Serialize(ToDto(set), s_indented);

    public static ResolveDto ToDto(EndpointSet set) => new(set.ServiceName, set.SourceName, set.Version, [.. set.Endpoints.Select(EndpointDto.From)]);

    /// <summary>Writes a set as YAML. Every string is a double-quoted scalar, which reads back as the same string.</summary>
    public static string ResolveYaml(EndpointSet set)
    {
        var yaml = new StringBuilder();
        yaml.Append("service: ").AppendLine(Quote(set.ServiceName));
        yaml.Append("source: ").AppendLine(Quote(set.SourceName));
        yaml.Append("version: ").AppendLine(set.Version.ToString(CultureInfo.InvariantCulture));
        if (set.Count == 0)
        {
            yaml.AppendLine("endpoints: []");
            return yaml.ToString();
        }

        yaml.AppendLine("endpoints:");
        foreach (var e in set.Endpoints)
        {
            yaml.Append("- address: ").AppendLine(Quote(e.Host));
            yaml.Append("  port: ").AppendLine(e.Port.ToString(CultureInfo.InvariantCulture));
            yaml.Append("  scheme: ").AppendLine(e.Scheme is null ? "null" : Quote(e.Scheme));
            yaml.Append("  weight: ").AppendLine(e.Weight.ToString(CultureInfo.InvariantCulture));
            yaml.Append("  priority: ").AppendLine(e.Priority.ToString(CultureInfo.InvariantCulture));
            yaml.Append("  zone: ").AppendLine(e.Zone is null ? "null" : Quote(e.Zone));
            if (e.Metadata.Count == 0)
            {
                yaml.AppendLine("  metadata: {}");
                continue;
            }

            yaml.AppendLine("  metadata:");
            foreach (var pair in e.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                yaml.Append("    ").Append(Quote(pair.Key)).Append(": ").AppendLine(Quote(pair.Value));
            }
        }

        return yaml.ToString();
    }

    /// <summary>Writes a set as kubectl-style columns; <c>wide</c> adds the metadata. Headers are bold on a terminal only.</summary>
    public static string Table(EndpointSet set, bool wide, bool color)
    {
        string[] headers = wide ? ["ADDRESS", "SCHEME", "WEIGHT", "PRIORITY", "ZONE", "METADATA"] : ["ADDRESS", "SCHEME", "WEIGHT", "PRIORITY", "ZONE"];
        var rows = set.Endpoints.Select(e =>
        {
            string[] row =
            [
                e.Address,
                e.Scheme ?? "-",
                e.Weight.ToString(CultureInfo.InvariantCulture),
                e.Priority.ToString(CultureInfo.InvariantCulture),
                e.Zone ?? "-",
                e.Metadata.Count == 0 ? "-" : string.Join(",", e.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)),
            ];
            return row.Take(headers.Length).Select(Printable).ToArray();
        }).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        var header = string.Join("   ", headers.Select((h, i) => i == headers.Length - 1 ? h : h.PadRight(widths[i])));
        text.AppendLine(color ? "\u001b[1m" + header + "\u001b[0m" : header);
        foreach (var row in rows)
        {
            text.AppendLine(string.Join("   ", row.Select((c, i) => i == row.Length - 1 ? c : c.PadRight(widths[i]))));
        }

        return text.ToString();
    }

    /// <summary>Keeps control characters a registry sent out of the terminal: they could move the cursor or recolour it.</summary>
    public static string Printable(string text)
        => text.Any(char.IsControl) ? new string([.. text.Select(c => char.IsControl(c) ? '?' : c)]) : text;

    private static string Quote(string text) => JsonSerializer.Serialize(text);
}
