using System.Text.Json.Nodes;

namespace Lodestar.Testing.Kubernetes;

/// <summary>One endpoint of a <see cref="FakeEndpointSlice"/>; conditions left null are omitted, as the API allows.</summary>
public sealed record FakeEndpoint(string Address)
{
    /// <summary>Gets <c>conditions.ready</c>.</summary>
    public bool? Ready { get; init; } = true;

    /// <summary>Gets <c>conditions.serving</c>.</summary>
    public bool? Serving { get; init; } = true;

    /// <summary>Gets <c>conditions.terminating</c>.</summary>
    public bool? Terminating { get; init; }

    /// <summary>Gets <c>nodeName</c>.</summary>
    public string? NodeName { get; init; }

    /// <summary>Gets <c>zone</c>.</summary>
    public string? Zone { get; init; }

    /// <summary>Gets the name of the pod in <c>targetRef</c>.</summary>
    public string? PodName { get; init; }

    /// <summary>Gets <c>hints.forZones</c>.</summary>
    public IReadOnlyList<string>? HintZones { get; init; }

    /// <summary>A ready endpoint.</summary>
    public static FakeEndpoint ReadyAt(string address, string? pod = null) => new(address) { PodName = pod };

    /// <summary>An endpoint of a pod that is shutting down but still serving.</summary>
    public static FakeEndpoint TerminatingAt(string address, bool serving = true) => new(address) { Ready = false, Serving = serving, Terminating = true };
}

/// <summary>A port of a <see cref="FakeEndpointSlice"/>.</summary>
public sealed record FakePort(string? Name, int? Port, string? AppProtocol = null);

/// <summary>An EndpointSlice as a test declares it; the fake server renders it as <c>discovery.k8s.io/v1</c> JSON.</summary>
public sealed record FakeEndpointSlice(string Namespace, string Name, string ServiceName, IReadOnlyList<FakeEndpoint> Endpoints, IReadOnlyList<FakePort> Ports)
{
    /// <summary>Gets the address type. Default <c>IPv4</c>.</summary>
    public string AddressType { get; init; } = "IPv4";

    /// <summary>A slice of one named port.</summary>
    public static FakeEndpointSlice Create(string ns, string name, string service, int port, params FakeEndpoint[] endpoints)
        => new(ns, name, service, endpoints, [new FakePort("http", port)]);

    internal JsonObject ToJson(long resourceVersion)
    {
        var endpoints = new JsonArray();
        foreach (var e in Endpoints)
        {
            var conditions = new JsonObject();
            if (e.Ready is { } ready)
            {
                conditions["ready"] = ready;
            }

            if (e.Serving is { } serving)
            {
                conditions["serving"] = serving;
            }

            if (e.Terminating is { } terminating)
            {
                conditions["terminating"] = terminating;
            }

            var item = new JsonObject
            {
                ["addresses"] = new JsonArray(e.Address),
                ["conditions"] = conditions,
            };
            if (e.NodeName is not null)
            {
                item["nodeName"] = e.NodeName;
            }

            if (e.Zone is not null)
            {
                item["zone"] = e.Zone;
            }

            if (e.HintZones is not null)
            {
                item["hints"] = new JsonObject { ["forZones"] = new JsonArray(e.HintZones.Select(z => (JsonNode)new JsonObject { ["name"] = z }).ToArray()) };
            }

            if (e.PodName is not null)
            {
                item["targetRef"] = new JsonObject { ["kind"] = "Pod", ["name"] = e.PodName, ["namespace"] = Namespace, ["uid"] = Guid.NewGuid().ToString() };
            }

            endpoints.Add(item);
        }

        var ports = new JsonArray();
        foreach (var p in Ports)
        {
            var port = new JsonObject { ["protocol"] = "TCP" };
            if (p.Name is not null)
            {
                port["name"] = p.Name;
            }

            if (p.Port is { } number)
            {
                port["port"] = number;
            }

            if (p.AppProtocol is not null)
            {
                port["appProtocol"] = p.AppProtocol;
            }

            ports.Add(port);
        }

        return new JsonObject
        {
            ["kind"] = "EndpointSlice",
            ["apiVersion"] = "discovery.k8s.io/v1",
            ["metadata"] = new JsonObject
            {
                ["name"] = Name,
                ["namespace"] = Namespace,
                ["resourceVersion"] = resourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["generation"] = 1,
                ["labels"] = new JsonObject { ["kubernetes.io/service-name"] = ServiceName, ["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io" },
            },
            ["addressType"] = AddressType,
            ["endpoints"] = endpoints,
            ["ports"] = ports,
        };
    }
}
