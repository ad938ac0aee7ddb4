using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Lodestar.Cli.Commands;

/// <summary>
/// <c>lodestar top --url http://host:port/lodestar</c>: a live table of every service a process calls, read from its
/// admin API (<c>MapLodestarAdmin</c>); one snapshot when stdout is not a terminal, the raw JSON with <c>-o json</c>.
/// </summary>
internal static class TopCommand
{
    private static readonly Option<string> Url = new("--url")
    {
        Description = "The admin page of the process to watch, as MapLodestarAdmin maps it: http://127.0.0.1:5000/lodestar.",
        Required = true,
    };

    private static readonly Option<string?> Service = new("--service") { Description = "Show only this service." };

    private static readonly Option<int> Interval = new("--interval") { Description = "Seconds between refreshes (1-60).", DefaultValueFactory = _ => 2 };

    private static readonly Option<string?> Output = CreateOutput();

    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    public static Command Create(CliRun run)
    {
        var command = new Command("top", "Show the services a process calls through Lodestar, live: source status, endpoint health, load and recent events.");
        foreach (var option in new Option[] { Url, Service, Interval, Output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) => RunAsync(run, parseResult, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var api = ApiUri(parseResult.GetValue(Url)!, parseResult.GetValue(Service));
        var interval = parseResult.GetValue(Interval);
        if (interval is < 1 or > 60)
        {
            throw new CliException(string.Create(CultureInfo.InvariantCulture, $"--interval is {interval}; it must be between 1 and 60."));
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        if (string.Equals(parseResult.GetValue(Output), "json", StringComparison.Ordinal))
        {
            using var document = await FetchAsync(run, http, api, cancellationToken);
            await run.Console.Out.WriteLineAsync(JsonSerializer.Serialize(document.RootElement, s_indented));
            return CliApp.SuccessExitCode;
        }

        var console = CreateConsole(run.Console);
        if (!run.Console.OutputIsTerminal)
        {
            using var document = await FetchAsync(run, http, api, cancellationToken);
            console.Write(Render(document.RootElement, run));
            return CliApp.SuccessExitCode;
        }

        using (var first = await FetchAsync(run, http, api, cancellationToken))
        {
            await console.Live(Render(first.RootElement, run)).AutoClear(false).StartAsync(async context =>
            {
                while (!cancellationToken.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(interval), cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    IRenderable view;
                    try
                    {
                        using var next = await FetchAsync(run, http, api, cancellationToken);
                        view = Render(next.RootElement, run);
                    }
                    catch (CliException ex)
                    {
                        // The process may restart: keep trying, and say so instead of showing stale numbers silently.
                        view = new Markup("[red]not updating:[/] " + Markup.Escape(ex.Message));
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        return;
                    }

                    context.UpdateTarget(view);
                }
            });
        }

        return CliApp.SuccessExitCode;
    }

    internal static Uri ApiUri(string url, string? service)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CliException($"--url '{url}' is not an http or https URL; give the admin page's address, for example http://127.0.0.1:5000/lodestar.");
        }

        var builder = new UriBuilder(uri) { UserName = "", Password = "" };
        builder.Path = builder.Path.TrimEnd('/') + "/api";
        builder.Query = string.IsNullOrEmpty(service) ? "" : "service=" + Uri.EscapeDataString(service);
        return builder.Uri;
    }

    private static async Task<JsonDocument> FetchAsync(CliRun run, HttpClient http, Uri api, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(api, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new CliException(run.Redact($"cannot reach the admin API at {api}: {ex.Message}"));
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(run.Redact($"the admin API at {api} did not answer within 10 s."));
        }

        using (response)
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var hint = response.StatusCode switch
                {
                    HttpStatusCode.Forbidden => " (it answers loopback callers only unless the app opens it)",
                    HttpStatusCode.Unauthorized => " (the app requires authorization for it)",
                    HttpStatusCode.NotFound => " (is MapLodestarAdmin mapped at that prefix?)",
                    _ => "",
                };
                throw new CliException(run.Redact(string.Create(CultureInfo.InvariantCulture, $"the admin API at {api} answered {(int)response.StatusCode}{hint}.")));
            }

            // The answer is the process's whole view; a cap keeps a wrong URL (a large file) from filling memory.
            var body = await Discovery.RegistryStreams.ReadAsync(response.Content, 16 * 1024 * 1024, api.ToString(), cancellationToken);
            try
            {
                return JsonDocument.Parse(body);
            }
            catch (JsonException ex)
            {
                throw new CliException(run.Redact($"the answer from {api} is not the admin API's JSON: {ex.Message}"));
            }
        }
    }

    private static IAnsiConsole CreateConsole(CliConsole console)
    {
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(console.Out),
            Ansi = console.OutputColor ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = console.OutputColor ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = console.OutputIsTerminal ? InteractionSupport.Yes : InteractionSupport.No,
        });
        if (!console.OutputIsTerminal)
        {
            // A pipe has no width; a table cut at 80 columns would drop the columns that matter.
            ansi.Profile.Width = 200;
        }

        return ansi;
    }

    internal static IRenderable Render(JsonElement root, CliRun run)
    {
        var parts = new List<IRenderable>();
        var services = root.GetProperty("services");
        if (services.GetArrayLength() == 0)
        {
            parts.Add(new Markup("[grey]No service has been called through Lodestar yet.[/]"));
        }

        foreach (var service in services.EnumerateArray())
        {
            parts.Add(ServiceTable(service, run));
        }

        var events = root.GetProperty("events").EnumerateArray().Reverse().Take(10).ToList();
        if (events.Count > 0)
        {
            var lines = events.Select(e => new Markup(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{e.GetProperty("timestamp").GetDateTimeOffset().ToLocalTime():HH:mm:ss} {Text(e, "kind", run)} {Text(e, "service", run)} {Text(e, "endpoint", run)} {Text(e, "detail", run)}")).TrimEnd()));
            parts.Add(new Panel(new Rows(lines)) { Header = new PanelHeader("recent events"), Border = BoxBorder.Rounded });
        }

        return new Rows(parts);
    }

    private static Table ServiceTable(JsonElement service, CliRun run)
    {
        var source = service.GetProperty("source");
        var endpoints = service.GetProperty("endpoints");
        var title = string.Create(CultureInfo.InvariantCulture,
            $"{Markup.Escape(Text(service, "service", run))}  [grey]source {Markup.Escape(Text(source, "name", run))} v{source.GetProperty("setVersion").GetInt64()} · {source.GetProperty("reconnects").GetInt64()} reconnects · {Markup.Escape(Text(service, "policy", run))} · {service.GetProperty("healthyEndpoints").GetInt32()}/{endpoints.GetArrayLength()} healthy[/]");
        if (service.GetProperty("inPanic").GetBoolean())
        {
            title += " [red]panic[/]";
        }

        if (Text(source, "lastError", run) is { Length: > 0 } error)
        {
            title += " [red]error: " + Markup.Escape(error) + "[/]";
        }

        var table = new Table { Title = new TableTitle(title), Border = TableBorder.Simple };
        table.AddColumn("ENDPOINT");
        table.AddColumn("HEALTH");
        table.AddColumn("ZONE");
        table.AddColumn(new TableColumn("WEIGHT").RightAligned());
        table.AddColumn(new TableColumn("IN FLIGHT").RightAligned());
        table.AddColumn("SHARE (1m)");
        table.AddColumn(new TableColumn("SUCCESS (1m)").RightAligned());
        table.AddColumn(new TableColumn("LATENCY").RightAligned());
        table.AddColumn(new TableColumn("REQUESTS").RightAligned());
        foreach (var endpoint in endpoints.EnumerateArray())
        {
            var share = endpoint.GetProperty("share").GetDouble();
            table.AddRow(
                new Text(Text(endpoint, "address", run)),
                new Markup(Health(endpoint, run)),
                new Text(Text(endpoint, "zone", run)),
                new Text(endpoint.GetProperty("weight").GetInt32().ToString(CultureInfo.InvariantCulture)),
                new Text(endpoint.GetProperty("inFlight").GetInt32().ToString(CultureInfo.InvariantCulture)),
                new Markup(ShareBar(share)),
                new Text(endpoint.GetProperty("successRate") is { ValueKind: JsonValueKind.Number } rate ? Percent(rate.GetDouble()) : "-"),
                new Text(endpoint.GetProperty("latency") is { ValueKind: JsonValueKind.Number } latency ? Milliseconds(latency.GetDouble()) : "-"),
                new Text(endpoint.GetProperty("requests").GetInt64().ToString(CultureInfo.InvariantCulture)));
        }

        return table;
    }

    private static string Health(JsonElement endpoint, CliRun run)
    {
        if (endpoint.GetProperty("draining").GetBoolean())
        {
            return "[grey]draining[/]";
        }

        if (endpoint.GetProperty("ejection") is { ValueKind: JsonValueKind.Object } ejection)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"[red]ejected ({Markup.Escape(Text(ejection, "reason", run))}, {Math.Ceiling(ejection.GetProperty("timeLeft").GetDouble() / 1000)} s left)[/]");
        }

        var breaker = Text(endpoint, "breaker", run);
        var check = Text(endpoint, "activeCheck", run);
        return breaker switch
        {
            "open" => "[red]breaker open[/]",
            "half_open" => "[yellow]breaker half-open[/]",
            _ when check == "failing" => "[red]check failing[/]",
            _ when check == "pending" => "[yellow]check pending[/]",
            _ when endpoint.GetProperty("slowStartFactor") is { ValueKind: JsonValueKind.Number } ramp => "[blue]ramping " + Percent(ramp.GetDouble()) + "[/]",
            _ => "[green]healthy[/]",
        };
    }

    private static string ShareBar(double share)
    {
        var filled = (int)Math.Round(Math.Clamp(share, 0, 1) * 10);
        return "[blue]" + new string('█', filled) + "[/][grey]" + new string('░', 10 - filled) + "[/] " + Percent(share);
    }

    private static string Percent(double value) => (value * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";

    private static string Milliseconds(double value) => value.ToString(value < 10 ? "0.00" : "0", CultureInfo.InvariantCulture) + " ms";

    /// <summary>Reads a string property for the terminal: one line, no control characters, redacted.</summary>
    private static string Text(JsonElement element, string name, CliRun run)
        => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? EndpointOutput.Printable(run.Redact(CliConsole.OneLine(value.GetString()!)))
            : "";

    private static Option<string?> CreateOutput()
    {
        var option = new Option<string?>("--output", "-o") { Description = "Output format: table (default) or json (one dump of the admin API's answer).", HelpName = "table|json" };
        option.AcceptOnlyFromAmong("table", "json");
        return option;
    }
}
