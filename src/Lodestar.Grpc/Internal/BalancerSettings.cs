namespace Lodestar.Grpc.Internal;

/// <summary>What a Lodestar balancer reads from its load-balancing config.</summary>
/// <param name="Name">The balancer name.</param>
/// <param name="Policy">The Lodestar policy.</param>
/// <param name="Client">The Lodestar client whose options apply, or <see langword="null"/>.</param>
/// <param name="HashHeader">The metadata header that is the hash key, or <see langword="null"/>.</param>
/// <param name="Service">The service, for channels whose resolver does not name it, or <see langword="null"/>.</param>
/// <param name="Error">What is wrong with the config, or <see langword="null"/>; a balancer with an error fails every call with it.</param>
internal sealed record BalancerSettings(string Name, string Policy, string? Client, string? HashHeader, string? Service, string? Error = null)
{
    private static readonly string[] s_keys = [LodestarGrpcPolicies.ClientKey, LodestarGrpcPolicies.HashHeaderKey, LodestarGrpcPolicies.ServiceKey];

    public static BalancerSettings Read(string name, string policy, IDictionary<string, object>? configuration)
    {
        // grpc-dotnet passes the policy's own object; accept the outer one ({ "<name>": { ... } }) too.
        if (configuration is not null && configuration.TryGetValue(name, out var nested) && nested is IDictionary<string, object> inner)
        {
            configuration = inner;
        }

        string? error = null;
        foreach (var (key, value) in configuration ?? new Dictionary<string, object>())
        {
            if (!s_keys.Contains(key, StringComparer.Ordinal))
            {
                // A misspelt key would otherwise be ignored silently (a ring hash without its key picks at random).
                error = $"The load-balancing config of '{name}' has the key '{key}', which it does not know; known keys: {string.Join(", ", s_keys)}.";
                break;
            }

            if (value is not string)
            {
                error = $"The load-balancing config of '{name}' has a '{key}' that is not a string.";
                break;
            }
        }

        return new BalancerSettings(name, policy, Get(configuration, LodestarGrpcPolicies.ClientKey), Get(configuration, LodestarGrpcPolicies.HashHeaderKey),
            Get(configuration, LodestarGrpcPolicies.ServiceKey), error);
    }

    private static string? Get(IDictionary<string, object>? configuration, string key)
        => configuration is not null && configuration.TryGetValue(key, out var value) && value is string { Length: > 0 } text ? text : null;
}
