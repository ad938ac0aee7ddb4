using System.CommandLine;

namespace Lodestar.Cli;

/// <summary>Options shared by several commands. Each command adds only the ones that apply to it.</summary>
internal static class CliOptions
{
    public static readonly Option<string[]> Config = new("--config")
    {
        Description = "Extra JSON configuration file(s); appsettings.json in the current folder is always read when present.",
        AllowMultipleArgumentsPerToken = true,
        Arity = ArgumentArity.ZeroOrMore,
    };

    public static readonly Option<string?> Output = CreateOutput();

    public static readonly Option<bool> Json = new("--json") { Description = "Same as -o json." };

    public static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Log Lodestar's own diagnostics to stderr; show the stack of unexpected errors." };

    public static readonly Option<string?> Address = new("--address")
    {
        Description = "Registry URL: http://127.0.0.1:2379 for etcd (several members separated by commas, as etcdctl's --endpoints), http://127.0.0.1:8500 for Consul.",
    };

    private static Option<string?> CreateOutput()
    {
        var option = new Option<string?>("--output", "-o") { Description = "Output format: table (default), wide, json or yaml.", HelpName = "table|wide|json|yaml" };
        option.AcceptOnlyFromAmong("table", "wide", "json", "yaml");
        return option;
    }
}
