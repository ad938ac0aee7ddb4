using System.CommandLine;

namespace Lodestar.Cli.Sources;

/// <summary>Every source the CLI knows. Add one line per source.</summary>
internal static class CliSources
{
    public static readonly IReadOnlyList<ICliSource> All =
    [
        new ConfigurationCliSource(),
        new EtcdCliSource(),
        new DnsCliSource(),
        new ConsulCliSource(),
        new KubernetesCliSource(),
        new XdsCliSource(),
    ];

    /// <summary>Gets <c>--source</c>: which registry to ask; without it only configuration is consulted (the others need an address or credentials).</summary>
    public static readonly Option<string?> Source = CreateSourceOption();

    /// <summary>Gets <c>--source</c> for register and deregister: the registries that take registrations.</summary>
    public static readonly Option<string?> RegistrySource = CreateRegistrySourceOption();

    /// <summary>Returns the source the parsed command names.</summary>
    public static ICliSource Selected(ParseResult parseResult, bool registering)
    {
        var name = parseResult.GetValue(registering ? RegistrySource : Source) ?? (registering ? null : "configuration");
        if (name is null)
        {
            throw new CliException($"--source is required: one of {string.Join(", ", All.Where(s => s.CanRegister).Select(s => s.Name))}.");
        }

        return All.First(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Returns each option once, in order: several sources share some (<c>--prefix</c>).</summary>
    public static IEnumerable<Option> Distinct(IEnumerable<Option> options)
    {
        var seen = new HashSet<Option>();
        return options.Where(seen.Add);
    }

    private static Option<string?> CreateSourceOption()
    {
        var option = new Option<string?>("--source", "-s")
        {
            Description = "Endpoint source: " + string.Join(", ", All.Select(s => s.Name)) + ". Default: configuration.",
        };
        option.AcceptOnlyFromAmong([.. All.Select(s => s.Name)]);
        return option;
    }

    private static Option<string?> CreateRegistrySourceOption()
    {
        var option = new Option<string?>("--source", "-s")
        {
            Description = "Registry: " + string.Join(" or ", All.Where(s => s.CanRegister).Select(s => s.Name)) + ".",
            Required = true,
        };
        option.AcceptOnlyFromAmong([.. All.Where(s => s.CanRegister).Select(s => s.Name)]);
        return option;
    }
}
