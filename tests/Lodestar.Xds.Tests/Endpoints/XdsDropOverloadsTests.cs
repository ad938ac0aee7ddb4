using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;

namespace Lodestar.Xds.Tests.Endpoints;

/// <summary>The drop decision shared by the <c>HttpClient</c> path and <c>xds:///</c> channels, with scripted randomness.</summary>
public sealed class XdsDropOverloadsTests
{
    [Fact]
    public void TryDrop_HundredPercent_DropsEveryRequestWhateverTheDraw()
    {
        var drops = new XdsDropOverloads();
        drops.Set("orders", [new XdsDropOverload("lb", 1.0)]);
        var draws = new Scripted(0.0, 0.5, 0.999999);

        for (var i = 0; i < 3; i++)
        {
            Assert.True(drops.TryDrop("orders", draws.Next, out var drop));
            Assert.Equal("lb", drop.Category);
        }

        Assert.Equal(3, draws.Used);
    }

    [Fact]
    public void TryDrop_ZeroPercent_DropsNothing()
    {
        var drops = new XdsDropOverloads();
        drops.Set("orders", [new XdsDropOverload("lb", 0.0)]);
        var draws = new Scripted(0.0, 0.0, 0.0);

        for (var i = 0; i < 3; i++)
        {
            Assert.False(drops.TryDrop("orders", draws.Next, out _));
        }
    }

    [Theory]
    [InlineData(0.29, 0.99, "lb")] // the first category drops; the second is not drawn
    [InlineData(0.30, 0.49, "throttle")] // the first lets it through (draw not below 0.3), the second drops
    [InlineData(0.30, 0.50, null)] // neither drops
    public void TryDrop_TwoCategories_AppliesThemInOrder(double first, double second, string? expected)
    {
        var drops = new XdsDropOverloads();
        drops.Set("orders", [new XdsDropOverload("lb", 0.3), new XdsDropOverload("throttle", 0.5)]);
        var draws = new Scripted(first, second);

        var dropped = drops.TryDrop("orders", draws.Next, out var drop);

        Assert.Equal(expected is not null, dropped);
        Assert.Equal(expected, drop?.Category);
        Assert.Equal(expected == "lb" ? 1 : 2, draws.Used);
    }

    [Fact]
    public void TryDrop_OtherClusterOrUnknownCluster_DropsNothing()
    {
        var drops = new XdsDropOverloads();
        drops.Set("orders", [new XdsDropOverload("lb", 1.0)]);

        Assert.False(drops.TryDrop("billing", static () => 0.0, out _));
        Assert.False(drops.IsKnown("billing"));
        Assert.True(drops.IsKnown("orders"));
    }

    [Fact]
    public void Remove_ListReplacedSince_KeepsTheNewerList()
    {
        var drops = new XdsDropOverloads();
        IReadOnlyList<XdsDropOverload> older = [new XdsDropOverload("lb", 1.0)];
        drops.Set("orders", older);
        drops.Set("orders", [new XdsDropOverload("throttle", 1.0)]);

        drops.Remove("orders", older);

        Assert.True(drops.TryDrop("orders", static () => 0.0, out var drop));
        Assert.Equal("throttle", drop.Category);
    }

    [Fact]
    public void TryDrop_ThirtyPercentOverTenThousandPicks_DropsThirtyPercentWithinTwoPoints()
    {
        var drops = new XdsDropOverloads();
        drops.Set("orders", [new XdsDropOverload("lb", 0.3)]);
        var random = new Random(20261201);

        var dropped = 0;
        for (var i = 0; i < 10_000; i++)
        {
            if (drops.TryDrop("orders", random.NextDouble, out _))
            {
                dropped++;
            }
        }

        Assert.InRange(dropped, 2_800, 3_200);
    }

    [Fact]
    public void Describe_Drop_NamesClusterCategoryAndShare()
    {
        var message = XdsDropOverloads.Describe("orders", new XdsDropOverload("throttle", 0.025));

        Assert.Equal("The request to xDS cluster 'orders' was dropped by the control plane's drop overload 'throttle' (2.5 % of requests); it was not sent.", message);
    }

    /// <summary>Returns the scripted draws in order and counts them; a draw past the script fails the test.</summary>
    private sealed class Scripted(params double[] values)
    {
        public int Used { get; private set; }

        public double Next() => Used < values.Length ? values[Used++] : throw new InvalidOperationException("More draws than scripted.");
    }
}
