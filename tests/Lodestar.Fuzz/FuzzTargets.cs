using Lodestar.Fuzz.Targets;

namespace Lodestar.Fuzz;

/// <summary>Every fuzz target: one per parser that reads bytes from the network or from a user's file.</summary>
/// <remarks>
/// Creating the targets must run no Lodestar code: in an instrumented build, Lodestar code that runs before
/// <c>Fuzzer.Run</c> has set up the coverage map writes through a null pointer. Targets create what they need per input,
/// and every input must reach Lodestar code: afl-fuzz stops on a seed whose run records no coverage at all.
/// </remarks>
public static class FuzzTargets
{
    /// <summary>Gets every target, in the order <c>scripts/fuzz.sh</c> runs them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        DnsTargets.Message,
        KubernetesTargets.WatchLines,
        KubernetesTargets.Kubeconfig,
        KubernetesTargets.Protobuf,
        ConsulTargets.Health,
        EtcdTargets.Range,
        EtcdTargets.Watch,
        EtcdTargets.Naming,
        ConfigurationTargets.AppSettings,
    ];

    /// <summary>Finds a target by name.</summary>
    /// <param name="name">The target's name.</param>
    /// <returns>The target, or <see langword="null"/>.</returns>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.Ordinal));
}
