using System.CommandLine;
using Lodestar.Cli;
using Lodestar.Cli.Commands;
using Lodestar.Discovery;

var root = new RootCommand("Lodestar: client-side service discovery and load balancing for .NET.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(ResolveCommand.Create());
root.Subcommands.Add(WatchCommand.Create());
foreach (var extra in ExtraCommands.All)
{
    root.Subcommands.Add(extra());
}

try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration
    {
        EnableDefaultExceptionHandler = false,
        // Without a timeout System.CommandLine 2.0 installs no SIGINT/SIGTERM handler: Ctrl+C would kill `register`
        // before it deregisters. With one, the command's token is cancelled and it gets this long to clean up.
        ProcessTerminationTimeout = TimeSpan.FromSeconds(15),
    });
}
catch (Exception ex) when (ex is CliException or EndpointResolutionException)
{
    await Console.Error.WriteLineAsync("error: " + ex.Message);
    return 2;
}
catch (Microsoft.Extensions.Options.OptionsValidationException ex)
{
    await Console.Error.WriteLineAsync("error: " + ex.Message);
    return 2;
}
