using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Kubernetes.Tests.Discovery;

public sealed class EndpointSliceMergerTests
{
    private static EndpointSlice Slice(string name, params (string Address, bool? Ready)[] endpoints) => new()
    {
        Metadata = new ObjectMeta { Name = name },
        Ports = [new SlicePort { Name = "http", Port = 80 }],
        Endpoints = endpoints.Select(e => new SliceEndpoint { Addresses = [e.Address], Conditions = new EndpointConditions { Ready = e.Ready } }).ToList(),
    };

    private static string[] Addresses(EndpointSliceMerger merger) => merger.Current.Select(e => e.Address).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void Apply_SameContentAgain_ReportsNoChangeAndKeepsCachedList()
    {
        var merger = new EndpointSliceMerger(null);
        Assert.True(merger.Apply(Slice("a", ("10.0.0.1", true)), null));
        var cached = merger.Current;

        Assert.False(merger.Apply(Slice("a", ("10.0.0.1", true)), null));
        Assert.Same(cached, merger.Current);
    }

    [Fact]
    public void Apply_ReadinessFlipOfDuplicate_RoutableWhileAnySliceSaysReady()
    {
        var merger = new EndpointSliceMerger(null);
        merger.Apply(Slice("a", ("10.0.0.1", true)), null);
        merger.Apply(Slice("b", ("10.0.0.1", false), ("10.0.0.2", null)), null);
        Assert.Equal(["10.0.0.1:80", "10.0.0.2:80"], Addresses(merger));

        Assert.True(merger.Remove("a"));
        Assert.Equal(["10.0.0.2:80"], Addresses(merger));
        Assert.False(merger.Remove("a"));
    }

    [Fact]
    public void ReplaceAll_Relist_RemovesSlicesThatAreGone()
    {
        var merger = new EndpointSliceMerger(null);
        merger.Apply(Slice("a", ("10.0.0.1", true)), null);
        merger.Apply(Slice("b", ("10.0.0.2", true)), null);

        Assert.True(merger.ReplaceAll([Slice("b", ("10.0.0.2", true)), Slice("c", ("10.0.0.3", true))], null));
        Assert.Equal(["10.0.0.2:80", "10.0.0.3:80"], Addresses(merger));
        Assert.Equal(2, merger.SliceCount);
    }
}
