using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Commands;

/// <summary><c>lodestar watch &lt;service&gt;</c>: prints one line per change until Ctrl+C.</summary>
internal static class WatchCommand
{
    public static Command Create()
    {
        var command = new Command("watch", "Print a line for every change of a service's endpoints until Ctrl+C.");
        command.Arguments.Add(ResolveCommand.Service);
        CliHost.AddSourceOptions(command);
        command.SetAction(RunAsync);
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var services = CliHost.Build(parseResult);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var service = parseResult.GetValue(ResolveCommand.Service)!;
        var json = parseResult.GetValue(CliHost.Json);
        var lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = resolver.Watch(
            service,
            parseResult.GetValue(CliHost.Source),
            set => lines.Writer.TryWrite(json ? JsonLine(set) : TextLine(set)),
            error => lines.Writer.TryWrite(json
                ? JsonSerializer.Serialize(new WatchEventDto(service, 0, null, error.Message), EndpointJson.Options)
                : string.Create(CultureInfo.InvariantCulture, $"{time.GetLocalNow():HH:mm:ss.fff} error: {error.Message}")));
        try
        {
            await foreach (var line in lines.Reader.ReadAllAsync(cancellationToken))
            {
                Console.WriteLine(line);
            }
        }
        catch (OperationCanceledException)
        {
        }

        return 0;
    }

    private static string JsonLine(EndpointSet set)
        => JsonSerializer.Serialize(new WatchEventDto(set.ServiceName, set.Version, set.Endpoints.Select(EndpointDto.From).ToList(), null), EndpointJson.Options);

    private static string TextLine(EndpointSet set)
        => string.Create(CultureInfo.InvariantCulture, $"{set.UpdatedAt.ToLocalTime():HH:mm:ss.fff} {set.ServiceName} v{set.Version}: {set.Count} endpoints [{string.Join(", ", set.Endpoints.Select(e => e.Weight == 1 ? e.Address : $"{e.Address} w={e.Weight}"))}]");
}
