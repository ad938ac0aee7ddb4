namespace Lodestar.Grpc.Internal;

/// <summary>What a Lodestar balancer reads from its load-balancing config.</summary>
/// <param name="Name">The balancer name.</param>
/// <param name="Policy">The Lodestar policy.</param>
/// <param name="Client">The Lodestar client whose options apply, or <see langword="null"/>.</param>
/// <param name="HashHeader">The metadata header that is the hash key, or <see langword="null"/>.</param>
/// <param name="Service">The service, for channels whose resolver does not name it, or <see langword="null"/>.</param>
internal sealed record BalancerSettings(string Name, string Policy, string? Client, string? HashHeader, string? Service)
{
    public static BalancerSettings Read(string name, string policy, IDictionary<string, object>? configuration)
    {
        // grpc-dotnet passes the policy's own object; accept the outer one ({ "<name>": { ... } }) too.
        if (configuration is not null && configuration.TryGetValue(name, out var nested) && nested is IDictionary<string, object> inner)
        {
            configuration = inner;
        }

        return new BalancerSettings(name, policy, Get(configuration, LodestarGrpcPolicies.ClientKey), Get(configuration, LodestarGrpcPolicies.HashHeaderKey)?.ToLowerInvariant(),
            Get(configuration, LodestarGrpcPolicies.ServiceKey));
    }

    private static string? Get(IDictionary<string, object>? configuration, string key)
        => configuration is not null && configuration.TryGetValue(key, out var value) && value is string { Length: > 0 } text ? text : null;
}
