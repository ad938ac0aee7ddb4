using System.Globalization;
using System.Reflection;
using System.Text;

namespace Lodestar.Health.Internal;

/// <summary>
/// The effective health settings of one health stage: outlier detection, active checks and circuit breakers, after
/// the merge of a service's settings with one client's overrides. Immutable once built; compared by value.
/// </summary>
internal sealed class HealthSettings
{
    private readonly SortedDictionary<string, string> _values;

    private HealthSettings(OutlierDetectionOptions outlier, HealthCheckOptions checks, CircuitBreakerOptions breaker)
    {
        Outlier = outlier;
        Checks = checks;
        Breaker = breaker;
        _values = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Describe("OutlierDetection", outlier, _values);
        Describe("HealthChecks", checks, _values);
        Describe("CircuitBreaker", breaker, _values);
        var key = new StringBuilder();
        foreach (var (name, value) in _values)
        {
            key.Append(name).Append('=').Append(value).Append(';');
        }

        Key = key.ToString();
    }

    /// <summary>Gets settings with outlier detection, active checks and breakers all off (tests and tools).</summary>
    public static HealthSettings Disabled { get; } = new(new OutlierDetectionOptions { Enabled = false }, new HealthCheckOptions(), new CircuitBreakerOptions());

    public OutlierDetectionOptions Outlier { get; }

    public HealthCheckOptions Checks { get; }

    public CircuitBreakerOptions Breaker { get; }

    /// <summary>Gets a canonical text of every setting: equal keys mean equal settings.</summary>
    public string Key { get; }

    /// <summary>
    /// Merges a service's settings with a client's overrides: a property the client set explicitly wins, any other
    /// keeps the service's value (itself the service's setting or the default).
    /// </summary>
    public static HealthSettings Merge(OutlierDetectionOptions serviceOutlier, HealthCheckOptions serviceChecks, CircuitBreakerOptions serviceBreaker,
        OutlierDetectionOptions? clientOutlier, HealthCheckOptions? clientChecks, CircuitBreakerOptions? clientBreaker)
    {
        var outlier = serviceOutlier.Clone();
        var checks = serviceChecks.Clone();
        var breaker = serviceBreaker.Clone();
        if (clientOutlier is not null)
        {
            outlier.OverrideWith(clientOutlier);
        }

        if (clientChecks is not null)
        {
            checks.OverrideWith(clientChecks);
        }

        if (clientBreaker is not null)
        {
            breaker.OverrideWith(clientBreaker);
        }

        return new HealthSettings(outlier, checks, breaker);
    }

    /// <summary>Creates settings from fully specified options (tests and tools).</summary>
    public static HealthSettings Create(OutlierDetectionOptions outlier, HealthCheckOptions checks, CircuitBreakerOptions breaker)
        => new(outlier.Clone(), checks.Clone(), breaker.Clone());

    /// <summary>Lists the settings that differ from <paramref name="other"/>'s as <c>name: this vs other</c>, at most <paramref name="limit"/>.</summary>
    public string DescribeDifferences(HealthSettings other, int limit = 5)
    {
        var differences = new List<string>();
        var more = 0;
        foreach (var (name, value) in _values)
        {
            if (other._values.TryGetValue(name, out var otherValue) && otherValue == value)
            {
                continue;
            }

            if (differences.Count < limit)
            {
                differences.Add($"{name}: {value} vs {otherValue}");
            }
            else
            {
                more++;
            }
        }

        return string.Join(", ", differences) + (more > 0 ? $" and {more} more" : string.Empty);
    }

    public override bool Equals(object? obj) => obj is HealthSettings other && other.Key == Key;

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Key);

    private static void Describe(string section, object options, SortedDictionary<string, string> values)
    {
        foreach (var property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetMethod is null || property.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var value = property.GetValue(options);
            values[section + "." + property.Name] = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null";
        }
    }
}
