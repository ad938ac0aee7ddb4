using Lodestar.Cli;

return await CliApp.RunAsync(args, CliConsole.System, CancellationToken.None);
