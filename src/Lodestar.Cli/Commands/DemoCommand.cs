using System.CommandLine;

namespace Lodestar.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Run the load-balancing demo.");
        command.SetAction(_ => 1);
        return command;
    }
}
