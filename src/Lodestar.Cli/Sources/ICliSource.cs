using System.CommandLine;
using Lodestar.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>
/// Plugs one registry into the CLI: the options it needs on <c>resolve</c>, <c>watch</c> and <c>register</c>, and how
/// to add it to the service collection from those options.
/// </summary>
internal interface ICliSource
{
    /// <summary>Gets the source name accepted by <c>--source</c>.</summary>
    string Name { get; }

    /// <summary>Gets the options this source adds to the commands (shared options such as <c>--address</c> live in <see cref="CommonOptions"/>).</summary>
    IReadOnlyList<Option> Options { get; }

    /// <summary>Adds the source (and its registrar, if any) to Lodestar from the parsed options.</summary>
    void Configure(ILodestarBuilder builder, ParseResult parseResult);
}

/// <summary>Options shared by several sources.</summary>
internal static class CommonOptions
{
    public static readonly Option<string?> Address = new("--address")
    {
        Description = "Registry URL, for example http://127.0.0.1:2379 (etcd; several members separated by commas, as etcdctl's --endpoints) or http://127.0.0.1:8500 (Consul).",
    };
}

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
    ];

    public static ICliSource? Find(string? name)
        => name is null ? null : All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
}
