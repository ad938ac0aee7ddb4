using System.Text.Json.Serialization;

namespace Lodestar.Consul.Internal;

// Models of the parts of Consul's HTTP API that Lodestar reads and writes. Consul uses PascalCase JSON names, which are
// the C# property names, so no renaming is needed.

/// <summary>One entry of <c>GET /v1/health/service/:service</c>: only the fields Lodestar reads, so that unread ones cost nothing.</summary>
internal sealed class HealthServiceEntry
{
    public HealthNode? Node { get; set; }

    public HealthService? Service { get; set; }

    public List<HealthCheck?>? Checks { get; set; }

    /// <summary>Gets why the entry could not be read (it is not an object, or a field has the wrong type), or <see langword="null"/>.</summary>
    [JsonIgnore]
    public string? Problem { get; init; }
}

internal sealed class HealthNode
{
    public string? Node { get; set; }

    public string? Address { get; set; }

    public string? Datacenter { get; set; }

    public Dictionary<string, string?>? Meta { get; set; }
}

internal sealed class HealthService
{
    public string? ID { get; set; }

    public List<string?>? Tags { get; set; }

    public string? Address { get; set; }

    public Dictionary<string, string?>? Meta { get; set; }

    public int Port { get; set; }

    public ServiceWeights? Weights { get; set; }
}

internal sealed class ServiceWeights
{
    public int Passing { get; set; } = 1;

    public int Warning { get; set; } = 1;
}

internal sealed class HealthCheck
{
    public string? Status { get; set; }
}

/// <summary>The body of <c>PUT /v1/agent/service/register</c>.</summary>
internal sealed class AgentServiceRegistration
{
    public required string ID { get; set; }

    public required string Name { get; set; }

    public List<string>? Tags { get; set; }

    public string? Address { get; set; }

    public int Port { get; set; }

    public Dictionary<string, string>? Meta { get; set; }

    public AgentServiceCheck? Check { get; set; }

    public string? Namespace { get; set; }

    public string? Partition { get; set; }
}

internal sealed class AgentServiceCheck
{
    public string? CheckID { get; set; }

    public string? Name { get; set; }

    public string? HTTP { get; set; }

    public string? Interval { get; set; }

    public string? Timeout { get; set; }

    public string? TTL { get; set; }

    public string? Status { get; set; }

    public string? DeregisterCriticalServiceAfter { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(HealthServiceEntry))]
[JsonSerializable(typeof(AgentServiceRegistration))]
internal sealed partial class ConsulJsonContext : JsonSerializerContext;
