using System.CommandLine;
using System.CommandLine.Help;
using Lodestar.Cli.Commands;
using Lodestar.Discovery;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli;

/// <summary>The <c>lodestar</c> command: parses, runs one command, and turns every failure into one line and an exit code.</summary>
internal static class CliApp
{
    /// <summary>The name the help and usage lines show, whatever the assembly or the tool shim is called.</summary>
    public const string Name = "lodestar";

    public const int SuccessExitCode = 0;

    /// <summary>The command ran but did not do what was asked (nothing to deregister, requests failed in the demo).</summary>
    public const int NotDoneExitCode = 1;

    /// <summary>Bad usage, bad configuration, or a registry that refused or could not be reached.</summary>
    public const int ErrorExitCode = 2;

    public const int CancelledExitCode = 130;

    /// <summary>Runs the CLI.</summary>
    /// <param name="args">The arguments after the command name.</param>
    /// <param name="console">Where to read and write.</param>
    /// <param name="cancellationToken">Ctrl+C: cancels the running command, which then cleans up (deregisters).</param>
    /// <param name="handleTermination">Whether to turn SIGINT/SIGTERM into <paramref name="cancellationToken"/>-like cancellation (the real process only).</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken, bool handleTermination = false)
    {
        var run = new CliRun(console);
        var root = CreateRoot(run);
        var parseResult = root.Parse(args.Length == 0 ? ["--help"] : args);
        run.Verbose = parseResult.GetValue(CliOptions.Verbose);
        if (parseResult.Errors.Count > 0)
        {
            var command = parseResult.CommandResult.Command;
            var usage = ReferenceEquals(command, root) ? Name : Name + " " + command.Name;
            // "Unrecognized command or argument 'x'" says more than the "Required command was not provided" that comes with it.
            var messages = parseResult.Errors.Select(e => e.Message.TrimEnd('.')).Distinct(StringComparer.Ordinal)
                .OrderBy(m => m.StartsWith("Unrecognized", StringComparison.Ordinal) ? 0 : 1);
            console.WriteError($"{string.Join("; ", messages)}. Run '{usage} --help' for usage.");
            return ErrorExitCode;
        }

        try
        {
            return await parseResult.InvokeAsync(
                new InvocationConfiguration
                {
                    EnableDefaultExceptionHandler = false,
                    Output = console.Out,
                    Error = console.Error,
                    // Without a timeout System.CommandLine installs no SIGINT/SIGTERM handler: Ctrl+C would kill
                    // `register` before it deregisters. With one, the command's token is cancelled and it gets this long.
                    ProcessTerminationTimeout = handleTermination ? TimeSpan.FromSeconds(15) : null,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (CliException ex)
        {
            console.WriteError(run.Redact(ex.Message));
            return ex.ExitCode;
        }
        catch (EndpointResolutionException ex)
        {
            console.WriteError(run.Redact(ex.Message));
            return ErrorExitCode;
        }
        catch (OptionsValidationException ex)
        {
            console.WriteError(run.Redact("configuration: " + ex.Message));
            return ErrorExitCode;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return CancelledExitCode;
        }
        catch (Exception ex)
        {
            // Not expected: still one line, with the stack behind --verbose rather than in the user's face.
            console.WriteError(run.Redact($"{ex.Message} ({ex.GetType().Name}{(run.Verbose ? "" : "; --verbose shows where")})"));
            if (run.Verbose)
            {
                console.Error.WriteLine(run.Redact(ex.ToString()));
            }

            return ErrorExitCode;
        }
    }

    internal static Command CreateRoot(CliRun run)
    {
        // A plain Command rather than RootCommand: RootCommand takes its name from the executable (Lodestar.Cli under
        // `dotnet run`), and help must say what users type.
        var root = new Command(Name, "Lodestar: client-side service discovery and load balancing for .NET.")
        {
            new HelpOption(),
            new VersionOption(),
        };
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(ResolveCommand.Create(run));
        root.Subcommands.Add(WatchCommand.Create(run));
        root.Subcommands.Add(TopCommand.Create(run));
        root.Subcommands.Add(XdsCommand.Create(run));
        root.Subcommands.Add(RegisterCommand.CreateRegister(run));
        root.Subcommands.Add(RegisterCommand.CreateDeregister(run));
        return root;
    }
}
