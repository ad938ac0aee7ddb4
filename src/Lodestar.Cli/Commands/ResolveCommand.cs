using System.Collections.Concurrent;
using System.CommandLine;
using Lodestar.Cli.Sources;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Commands;

/// <summary><c>lodestar resolve &lt;service&gt;</c>: prints the current endpoint set.</summary>
internal static class ResolveCommand
{
    public static readonly Argument<string> Service = new("service") { Description = "Logical service name, for example orders." };

    public static Command Create(CliRun run)
    {
        var command = new Command("resolve", "Print the current endpoints of a service.");
        command.Arguments.Add(Service);
        CliHost.AddOptions(command, registering: false, CliOptions.Output, CliOptions.Json);
        command.SetAction((parseResult, cancellationToken) => RunAsync(run, parseResult, cancellationToken));
        return command;
    }

    /// <summary>
    /// Waits for the first set, or for the first source error that will not get better by waiting (see
    /// <see cref="FailFast"/>), whichever comes first; other errors become warnings.
    /// </summary>
    public static async Task<EndpointSet> FirstSetAsync(IEndpointResolver resolver, string service, string sourceName, ConcurrentQueue<Exception> warnings, CancellationToken cancellationToken)
    {
        var fatal = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = resolver.Watch(service, sourceName, static _ => { }, error =>
        {
            if (!FailFast.Stops(error, sourceName) || !fatal.TrySetResult(error))
            {
                warnings.Enqueue(error);
            }
        });
        var first = resolver.GetEndpointsAsync(service, sourceName, cancellationToken).AsTask();
        await Task.WhenAny(first, fatal.Task).ConfigureAwait(false);
        if (!first.IsCompleted && fatal.Task.IsCompleted)
        {
            throw new CliException($"Resolving '{service}' from {sourceName} failed: {fatal.Task.Result.Message}");
        }

        return await first.ConfigureAwait(false);
    }

    private static async Task<int> RunAsync(CliRun run, ParseResult parseResult, CancellationToken cancellationToken)
    {
        var format = EndpointOutput.Format(parseResult);
        var source = CliSources.Selected(parseResult, registering: false);
        await using var services = CliHost.Build(parseResult, run, source);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var service = parseResult.GetValue(Service)!;
        var warnings = new ConcurrentQueue<Exception>();
        var set = await FirstSetAsync(resolver, service, source.Name, warnings, cancellationToken);
        foreach (var warning in warnings)
        {
            run.Console.WriteWarning(run.Redact(warning.Message));
        }

        var console = run.Console;
        switch (format)
        {
            case OutputFormat.Json:
                await console.Out.WriteLineAsync(EndpointOutput.ResolveJson(set));
                break;
            case OutputFormat.Yaml:
                await console.Out.WriteAsync(EndpointOutput.ResolveYaml(set));
                break;
            default:
                if (set.Count == 0)
                {
                    console.WriteNote($"No endpoints: service '{set.ServiceName}' has none in {set.SourceName} (version {set.Version}).");
                }
                else
                {
                    await console.Out.WriteAsync(EndpointOutput.Table(set, format == OutputFormat.Wide, console.OutputColor));
                }

                break;
        }

        return CliApp.SuccessExitCode;
    }
}
