using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Lodestar.Cli.Sources;
using Lodestar.Xds.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Commands;

internal sealed record XdsResourceDto(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("version")] string? Version,
    [property: JsonPropertyName("summary")] string Summary);

internal sealed record XdsTypeDto(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("typeUrl")] string TypeUrl,
    [property: JsonPropertyName("acceptedVersion")] string AcceptedVersion,
    [property: JsonPropertyName("wildcard")] bool Wildcard,
    [property: JsonPropertyName("lastNack")] XdsNackDto? LastNack);

internal sealed record XdsNackDto(
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("nonce")] string Nonce,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("at")] DateTimeOffset At);

internal sealed record XdsDumpDto(
    [property: JsonPropertyName("server")] string Server,
    [property: JsonPropertyName("types")] IReadOnlyList<XdsTypeDto> Types,
    [property: JsonPropertyName("resources")] IReadOnlyList<XdsResourceDto> Resources);

/// <summary>
/// <c>lodestar xds dump</c>: subscribes to every listener and cluster the control plane serves (or the ones named),
/// follows them to their route configurations and endpoints, waits, and prints what was received: per resource its
/// status and version, per type the accepted version and the last rejection (NACK).
/// </summary>
internal static class XdsCommand
{
    private static readonly Option<string[]> s_listener = new("--listener")
    {
        Description = "xDS: a listener to subscribe to (repeatable). Default: every listener (wildcard).",
    };

    private static readonly Option<string[]> s_cluster = new("--cluster")
    {
        Description = "xDS: a cluster to subscribe to (repeatable). Default: every cluster (wildcard).",
    };

    private static readonly Option<TimeSpan> s_wait = new("--wait")
    {
        Description = "How long to collect resources before printing (for example 2s). Default 2 seconds; at most 1 minute.",
        DefaultValueFactory = _ => TimeSpan.FromSeconds(2),
        CustomParser = result => ParseWait(result.Tokens.Count == 0 ? "2s" : result.Tokens[0].Value),
    };

    private static readonly JsonSerializerOptions s_indented = new(EndpointOutput.Json) { WriteIndented = true };

    public static Command Create(CliRun run)
    {
        var command = new Command("xds", "Inspect what an xDS control plane serves.");
        var dump = new Command("dump", "Subscribe to the listeners and clusters, follow them to routes and endpoints, and print what was received, with versions and the last NACK per type.");
        CliHost.AddOptions(dump, registering: false, XdsCliSource.Bootstrap, XdsCliSource.Delta, s_listener, s_cluster, s_wait, CliOptions.Output, CliOptions.Json);
        dump.SetAction((parseResult, cancellationToken) => DumpAsync(run, parseResult, cancellationToken));
        command.Subcommands.Add(dump);
        return command;
    }

    private static async Task<int> DumpAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var format = EndpointOutput.Format(parseResult);
        var source = CliSources.All.OfType<XdsCliSource>().Single();
        await using var services = CliHost.Build(parseResult, run, source);
        var inspection = await services.GetRequiredService<IXdsInspector>().InspectAsync(
            parseResult.GetValue(s_listener), parseResult.GetValue(s_cluster), parseResult.GetValue(s_wait), cancellationToken);
        var dump = ToDto(inspection);
        var text = format switch
        {
            OutputFormat.Json => JsonSerializer.Serialize(dump, s_indented),
            OutputFormat.Yaml => Yaml(dump),
            _ => Table(dump, format == OutputFormat.Wide, run.Console.OutputColor),
        };
        await run.Console.Out.WriteAsync(run.Redact(text));
        return CliApp.SuccessExitCode;
    }

    private static XdsDumpDto ToDto(XdsInspection inspection) => new(
        inspection.Server,
        [.. inspection.Types.Select(t => new XdsTypeDto(t.Type, t.TypeUrl, t.AcceptedVersion, t.Wildcard,
            t.LastNack is { } n ? new XdsNackDto(n.Version, n.Nonce, n.Message, n.At) : null))],
        [.. inspection.Resources.Select(r => new XdsResourceDto(r.Type, r.Name, r.Status, r.Version, r.Summary))]);

    private static string Table(XdsDumpDto dump, bool wide, bool color)
    {
        string[] headers = wide ? ["TYPE", "NAME", "STATUS", "VERSION", "SUMMARY"] : ["TYPE", "NAME", "STATUS", "VERSION"];
        var rows = dump.Resources.Select(r => new[] { r.Type, r.Name, r.Status, r.Version ?? "-", r.Summary }.Take(headers.Length).Select(EndpointOutput.Printable).ToArray()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        text.Append("server: ").AppendLine(EndpointOutput.Printable(dump.Server));
        var header = string.Join("   ", headers.Select((h, i) => i == headers.Length - 1 ? h : h.PadRight(widths[i])));
        text.AppendLine(color ? "\u001b[1m" + header + "\u001b[0m" : header);
        foreach (var row in rows)
        {
            text.AppendLine(string.Join("   ", row.Select((c, i) => i == row.Length - 1 ? c : c.PadRight(widths[i]))));
        }

        foreach (var type in dump.Types.Where(t => t.LastNack is not null))
        {
            text.Append("last NACK of ").Append(type.Type).Append(" (version ").Append(EndpointOutput.Printable(type.LastNack!.Version)).Append("): ")
                .AppendLine(EndpointOutput.Printable(type.LastNack.Message));
        }

        return text.ToString();
    }

    private static string Yaml(XdsDumpDto dump)
    {
        static string Quote(string? value) => value is null ? "null" : JsonSerializer.Serialize(value);
        var yaml = new StringBuilder();
        yaml.Append("server: ").AppendLine(Quote(dump.Server));
        yaml.AppendLine(dump.Types.Count == 0 ? "types: []" : "types:");
        foreach (var type in dump.Types)
        {
            yaml.Append("- type: ").AppendLine(Quote(type.Type));
            yaml.Append("  typeUrl: ").AppendLine(Quote(type.TypeUrl));
            yaml.Append("  acceptedVersion: ").AppendLine(Quote(type.AcceptedVersion));
            yaml.Append("  wildcard: ").AppendLine(type.Wildcard ? "true" : "false");
            if (type.LastNack is not { } nack)
            {
                yaml.AppendLine("  lastNack: null");
                continue;
            }

            yaml.AppendLine("  lastNack:");
            yaml.Append("    version: ").AppendLine(Quote(nack.Version));
            yaml.Append("    nonce: ").AppendLine(Quote(nack.Nonce));
            yaml.Append("    message: ").AppendLine(Quote(nack.Message));
            yaml.Append("    at: ").AppendLine(Quote(nack.At.ToString("O", CultureInfo.InvariantCulture)));
        }

        yaml.AppendLine(dump.Resources.Count == 0 ? "resources: []" : "resources:");
        foreach (var resource in dump.Resources)
        {
            yaml.Append("- type: ").AppendLine(Quote(resource.Type));
            yaml.Append("  name: ").AppendLine(Quote(resource.Name));
            yaml.Append("  status: ").AppendLine(Quote(resource.Status));
            yaml.Append("  version: ").AppendLine(Quote(resource.Version));
            yaml.Append("  summary: ").AppendLine(Quote(resource.Summary));
        }

        return yaml.ToString();
    }

    private static TimeSpan ParseWait(string text)
    {
        var value = text.Trim();
        var parsed = value.EndsWith("ms", StringComparison.Ordinal) && double.TryParse(value[..^2], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) ? TimeSpan.FromMilliseconds(ms)
            : value.EndsWith('s') && double.TryParse(value[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? TimeSpan.FromSeconds(s)
            : TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) ? span
            : throw new CliException($"--wait '{value}' is not a duration; write for example 2s, 500ms or 00:00:05.");
        return parsed >= TimeSpan.Zero && parsed <= TimeSpan.FromMinutes(1) ? parsed : throw new CliException($"--wait {value} must be between 0 and 1 minute.");
    }

}
