using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Lodestar.Cli.Sources;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Commands;

/// <summary><c>lodestar watch &lt;service&gt;</c>: prints one line (or document) per change until Ctrl+C.</summary>
internal static class WatchCommand
{
    public static Command Create(CliRun run)
    {
        var command = new Command("watch", "Print every change of a service's endpoints until Ctrl+C.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddOptions(command, registering: false, CliOptions.Output, CliOptions.Json);
        command.SetAction((parseResult, cancellationToken) => RunAsync(run, parseResult, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var format = EndpointOutput.Format(parseResult);
        var source = CliSources.Selected(parseResult, registering: false);
        await using var services = CliHost.Build(parseResult, run, source);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var service = parseResult.GetValue(ResolveCommand.Service)!;

        // Like resolve, a registry that refuses us fails the command at once rather than printing errors for ever.
        var warnings = new ConcurrentQueue<Exception>();
        await ResolveCommand.FirstSetAsync(resolver, service, source.Name, warnings, cancellationToken);

        var lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        long printed = 0;
        using var subscription = resolver.Watch(
            service,
            source.Name,
            set =>
            {
                // A subscription made while a set is being published can be handed that set twice: print each version once.
                long seen;
                do
                {
                    seen = Interlocked.Read(ref printed);
                    if (set.Version <= seen)
                    {
                        return;
                    }
                }
                while (Interlocked.CompareExchange(ref printed, set.Version, seen) != seen);

                lines.Writer.TryWrite(Line(set, format));
            },
            error => lines.Writer.TryWrite(ErrorLine(run, service, error, format, time)));
        foreach (var warning in warnings)
        {
            lines.Writer.TryWrite(ErrorLine(run, service, warning, format, time));
        }

        try
        {
            await foreach (var line in lines.Reader.ReadAllAsync(cancellationToken))
            {
                await run.Console.Out.WriteLineAsync(line);
                await run.Console.Out.FlushAsync(CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        return CliApp.SuccessExitCode;
    }

    private static string Line(EndpointSet set, OutputFormat format) => format switch
    {
        OutputFormat.Json => JsonSerializer.Serialize(new WatchEventDto(set.ServiceName, set.Version, [.. set.Endpoints.Select(EndpointDto.From)], null), EndpointOutput.Json),
        OutputFormat.Yaml => "---\n" + EndpointOutput.ResolveYaml(set).TrimEnd('\n'),
        _ => string.Create(CultureInfo.InvariantCulture,
            $"{set.UpdatedAt.ToLocalTime():HH:mm:ss.fff} {set.ServiceName} v{set.Version}: {set.Count} endpoints [{string.Join(", ", set.Endpoints.Select(e => Describe(e, format == OutputFormat.Wide)))}]"),
    };

    private static string Describe(DiscoveredEndpoint e, bool wide)
    {
        var text = e.Weight == 1 ? e.Address : string.Create(CultureInfo.InvariantCulture, $"{e.Address} w={e.Weight}");
        if (wide)
        {
            text += (e.Scheme is null ? "" : " " + e.Scheme) + (e.Priority == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" p={e.Priority}"))
                    + (e.Zone is null ? "" : " zone=" + e.Zone);
        }

        return EndpointOutput.Printable(text);
    }

    private static string ErrorLine(CliRun run, string service, Exception error, OutputFormat format, TimeProvider time)
    {
        var message = run.Redact(CliConsole.OneLine(error.Message));
        return format switch
        {
            OutputFormat.Json => JsonSerializer.Serialize(new WatchEventDto(service, 0, null, message), EndpointOutput.Json),
            OutputFormat.Yaml => "---\nservice: " + JsonSerializer.Serialize(service) + "\nerror: " + JsonSerializer.Serialize(message),
            _ => string.Create(CultureInfo.InvariantCulture, $"{time.GetLocalNow():HH:mm:ss.fff} error: {EndpointOutput.Printable(message)}"),
        };
    }
}
