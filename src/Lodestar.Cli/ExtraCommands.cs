using System.CommandLine;

namespace Lodestar.Cli;

/// <summary>Commands contributed by registry integrations (for example <c>register</c>). Add one line per command.</summary>
internal static class ExtraCommands
{
    public static readonly IReadOnlyList<Func<Command>> All =
    [
        Commands.RegisterCommand.CreateRegister,
        Commands.RegisterCommand.CreateDeregister,
    ];
}
