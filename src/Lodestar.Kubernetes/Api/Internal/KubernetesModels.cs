using System.Text.Json.Serialization;

namespace Lodestar.Kubernetes.Api.Internal;

// Only the fields Lodestar reads. Unknown fields are skipped by the deserializer, so the models stay valid as the API grows.

/// <summary><c>metav1.ObjectMeta</c>, reduced.</summary>
internal sealed class ObjectMeta
{
    public string? Name { get; set; }

    public string? Namespace { get; set; }

    public string? ResourceVersion { get; set; }

    public Dictionary<string, string>? Labels { get; set; }
}

/// <summary><c>metav1.ListMeta</c>.</summary>
internal sealed class ListMeta
{
    public string? ResourceVersion { get; set; }

    public string? Continue { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 EndpointSliceList</c>.</summary>
internal sealed class EndpointSliceList
{
    public ListMeta? Metadata { get; set; }

    public List<EndpointSlice>? Items { get; set; }
}

/// <summary>
/// <c>discovery.k8s.io/v1 EndpointSlice</c>. The watch protocol sends a <c>metav1.Status</c> in the same position on
/// ERROR events, so the Status fields (<see cref="Kind"/>, <see cref="Code"/>, <see cref="Reason"/>,
/// <see cref="Message"/>) are here too: one pass decodes any event.
/// </summary>
internal sealed class EndpointSlice
{
    public string? Kind { get; set; }

    public ObjectMeta? Metadata { get; set; }

    public string? AddressType { get; set; }

    public List<SliceEndpoint>? Endpoints { get; set; }

    public List<SlicePort>? Ports { get; set; }

    public int? Code { get; set; }

    public string? Reason { get; set; }

    public string? Message { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 Endpoint</c>.</summary>
internal sealed class SliceEndpoint
{
    public List<string>? Addresses { get; set; }

    public EndpointConditions? Conditions { get; set; }

    public string? Hostname { get; set; }

    public string? NodeName { get; set; }

    public string? Zone { get; set; }

    public EndpointHints? Hints { get; set; }

    public ObjectReference? TargetRef { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 EndpointConditions</c>: each may be absent, meaning unknown.</summary>
internal sealed class EndpointConditions
{
    public bool? Ready { get; set; }

    public bool? Serving { get; set; }

    public bool? Terminating { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 EndpointHints</c>.</summary>
internal sealed class EndpointHints
{
    public List<ForZone>? ForZones { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 ForZone</c>.</summary>
internal sealed class ForZone
{
    public string? Name { get; set; }
}

/// <summary><c>v1 ObjectReference</c>, reduced.</summary>
internal sealed class ObjectReference
{
    public string? Kind { get; set; }

    public string? Name { get; set; }

    public string? Namespace { get; set; }
}

/// <summary><c>discovery.k8s.io/v1 EndpointPort</c>.</summary>
internal sealed class SlicePort
{
    public string? Name { get; set; }

    public int? Port { get; set; }

    public string? Protocol { get; set; }

    public string? AppProtocol { get; set; }
}

/// <summary>One line of a watch stream: <c>{"type": "...", "object": {...}}</c>.</summary>
internal sealed class WatchEvent
{
    public string? Type { get; set; }

    public EndpointSlice? Object { get; set; }
}

/// <summary><c>metav1.Status</c>, the body of an error answer.</summary>
internal sealed class ApiStatus
{
    public string? Kind { get; set; }

    public int? Code { get; set; }

    public string? Reason { get; set; }

    public string? Message { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(EndpointSliceList))]
[JsonSerializable(typeof(WatchEvent))]
[JsonSerializable(typeof(ApiStatus))]
internal sealed partial class KubernetesJsonContext : JsonSerializerContext
{
}
