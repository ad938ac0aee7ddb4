using System.Globalization;
using Lodestar.Kubernetes.Api.Internal;

namespace Lodestar.Benchmarks.Kubernetes;

/// <summary>EndpointSlices shaped like the controller writes them: up to 100 endpoints each, with zone, node, pod and hints.</summary>
internal static class SliceData
{
    public static EndpointSlice Slice(int slice, int endpoints, int generation = 0)
    {
        var items = new List<SliceEndpoint>(endpoints);
        for (var i = 0; i < endpoints; i++)
        {
            var zone = "zone-" + (char)('a' + (i % 3));
            items.Add(new SliceEndpoint
            {
                Addresses = [string.Create(CultureInfo.InvariantCulture, $"10.{slice / 250}.{slice % 250}.{i + 1}")],
                // One endpoint flips readiness between generations: the smallest real change.
                Conditions = new EndpointConditions { Ready = i != 0 || generation % 2 == 0, Serving = true, Terminating = false },
                NodeName = string.Create(CultureInfo.InvariantCulture, $"node-{(slice * 7 + i) % 50}"),
                Zone = zone,
                Hints = new EndpointHints { ForZones = [new ForZone { Name = zone }] },
                TargetRef = new ObjectReference { Kind = "Pod", Name = string.Create(CultureInfo.InvariantCulture, $"orders-7d9f8c-{slice:x3}{i:x2}"), Namespace = "shop" },
            });
        }

        return new EndpointSlice
        {
            Kind = "EndpointSlice",
            Metadata = new ObjectMeta
            {
                Name = string.Create(CultureInfo.InvariantCulture, $"orders-{slice:x5}"),
                Namespace = "shop",
                ResourceVersion = (1000 + generation).ToString(CultureInfo.InvariantCulture),
            },
            AddressType = "IPv4",
            Endpoints = items,
            Ports = [new SlicePort { Name = "http", Port = 8080, Protocol = "TCP" }],
        };
    }
}
