using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public sealed class PickContextTests
{
    [Theory]
    [MemberData(nameof(HashPolicyTests.Policies), MemberType = typeof(HashPolicyTests))]
    public void Pick_RequestHashSet_HashPoliciesUseItAsTheKey(string policy)
    {
        // Arrange: the same key once as a header, once precomputed by an integration (gRPC metadata, xDS).
        var balancer = Create(HashPolicyTests.Policy(policy), Enumerable.Range(0, 20).Select(i => Endpoint(i)), new LoadBalancingOptions { HashKeyHeader = "X-User" });

        for (var user = 0; user < 50; user++)
        {
            var key = $"user-{user}";

            // Act
            var byHeader = balancer.Pick(HashPolicyTests.Request(header: key));
            var byHash = balancer.Pick(new PickContext { RequestHash = XxHash64.HashChars(key) });

            // Assert
            Assert.Same(byHeader, byHash);
        }
    }

    [Theory]
    [MemberData(nameof(HashPolicyTests.Policies), MemberType = typeof(HashPolicyTests))]
    public void Pick_RequestHashAndHeaderDisagree_RequestHashWins(string policy)
    {
        var balancer = Create(HashPolicyTests.Policy(policy), Enumerable.Range(0, 20).Select(i => Endpoint(i)), new LoadBalancingOptions { HashKeyHeader = "X-User" });
        var differ = 0;

        for (var user = 0; user < 50; user++)
        {
            var fromHeader = balancer.Pick(HashPolicyTests.Request(header: $"header-{user}"));
            var expected = balancer.Pick(new PickContext { RequestHash = XxHash64.HashChars($"hash-{user}") });
            var both = balancer.Pick(new PickContext(HashPolicyTests.Request(header: $"header-{user}")) { RequestHash = XxHash64.HashChars($"hash-{user}") });

            Assert.Same(expected, both);
            differ += ReferenceEquals(fromHeader, both) ? 0 : 1;
        }

        Assert.True(differ > 25, $"only {differ} of 50 picks differed from the header's endpoint");
    }

    [Theory]
    [MemberData(nameof(PickAllocationTests.AllPolicies), MemberType = typeof(PickAllocationTests))]
    public void Pick_AttemptedEndpoints_NeverReturnedAndNullWhenAllTried(string policy)
    {
        // Arrange: three endpoints, two already tried for this request.
        var endpoints = Enumerable.Range(0, 3).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(PickAllocationTests.Policy(policy), endpoints, new LoadBalancingOptions { HashKeyHeader = "X-User" });
        var request = HashPolicyTests.Request(header: "sticky");
        var tried = new List<EndpointState> { State(balancer, endpoints[0]), State(balancer, endpoints[1]) };

        // Act + Assert: only the third is ever picked; with all three tried there is nothing left.
        for (var i = 0; i < 50; i++)
        {
            Assert.Same(State(balancer, endpoints[2]), balancer.Pick(new PickContext(request) { Attempted = tried }));
        }

        tried.Add(State(balancer, endpoints[2]));
        Assert.Null(balancer.Pick(new PickContext(request) { Attempted = tried }));
    }

    [Theory]
    [MemberData(nameof(PickAllocationTests.AllPolicies), MemberType = typeof(PickAllocationTests))]
    public void Pick_RetryWithAttemptedListAndRequestHash_AllocatesNothing(string policy)
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 30).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(PickAllocationTests.Policy(policy), endpoints, new LoadBalancingOptions { HashKeyHeader = "X-User" });
        var tried = new List<EndpointState> { State(balancer, endpoints[3]), State(balancer, endpoints[7]) };
        var context = new PickContext(HashPolicyTests.Request(header: "user-1")) { Attempted = tried, RequestHash = 42 };
        for (var i = 0; i < 1_000; i++)
        {
            balancer.Pick(in context);
        }

        // Act
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            balancer.Pick(in context);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Assert
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void WasAttempted_ComparesByReference()
    {
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), [Endpoint(0), Endpoint(1)]);
        var first = balancer.Endpoints[0];
        var context = new PickContext { Attempted = [first] };

        Assert.True(context.WasAttempted(first));
        Assert.False(context.WasAttempted(balancer.Endpoints[1]));
        Assert.False(default(PickContext).WasAttempted(first));
    }
}
