using System.CommandLine;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Lodestar.Cli.Commands;

/// <summary><c>lodestar resolve &lt;service&gt;</c>: prints the current endpoint set.</summary>
internal static class ResolveCommand
{
    public static readonly Argument<string> Service = new("service") { Description = "Logical service name, for example orders." };

    public static Command Create()
    {
        var command = new Command("resolve", "Print the current endpoints of a service from the configured source.");
        command.Arguments.Add(Service);
        CliHost.AddSourceOptions(command);
        command.SetAction(RunAsync);
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        await using var services = CliHost.Build(parseResult);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var service = parseResult.GetValue(Service)!;
        var errors = new List<string>();
        using var subscription = resolver.Watch(service, parseResult.GetValue(CliHost.Source), static _ => { }, e => { lock (errors) { errors.Add(e.Message); } });
        var set = await resolver.GetEndpointsAsync(service, parseResult.GetValue(CliHost.Source), cancellationToken);
        foreach (var error in errors.ToArray())
        {
            await Console.Error.WriteLineAsync("warning: " + error);
        }

        if (parseResult.GetValue(CliHost.Json))
        {
            Console.WriteLine(EndpointJson.Resolve(set));
        }
        else
        {
            Print(set);
        }

        return 0;
    }

    internal static void Print(EndpointSet set)
    {
        var table = new Table().Title($"{Markup.Escape(set.ServiceName)} from {Markup.Escape(set.SourceName)} (version {set.Version}, {set.Count} endpoints)");
        table.AddColumns("Address", "Scheme", "Weight", "Priority", "Zone", "Metadata");
        foreach (var e in set.Endpoints)
        {
            table.AddRow(
                Markup.Escape(e.Address),
                e.Scheme ?? "-",
                e.Weight.ToString(System.Globalization.CultureInfo.InvariantCulture),
                e.Priority.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(e.Zone ?? "-"),
                Markup.Escape(string.Join(", ", e.Metadata.Select(m => m.Key + "=" + m.Value))));
        }

        AnsiConsole.Write(table);
    }
}
