using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>overlap_comm's buckets, cut with no ranks or model: from the end of the buffer, with the loss element in the first.</summary>
[TestClass]
public sealed class BucketAssignmentTests
{
    [TestMethod]
    public void BucketsAreCutFromTheEndOnceTheyHoldTheCapAndTheFirstCarriesTheLoss()
    {
        var (buckets, bucketOf) = OverlappedReducer.AssignBuckets(new long[] { 3, 4, 5, 6 }, bucketElements: 10);

        // 6 + 5 = 11 reaches the cap; 4 + 3 closes at the first parameter. The loss element follows the 18 values.
        CollectionAssert.AreEqual(new[] { (7L, 11L + 1), (0L, 7L) }, buckets);
        CollectionAssert.AreEqual(new[] { 1, 1, 0, 0 }, bucketOf);
    }

    [TestMethod]
    public void AParameterAboveTheCapClosesTheBucketItJoinsWithoutBeingSplit()
    {
        var (buckets, bucketOf) = OverlappedReducer.AssignBuckets(new long[] { 2, 50, 3 }, bucketElements: 10);

        CollectionAssert.AreEqual(new[] { (2L, 53L + 1), (0L, 2L) }, buckets);
        CollectionAssert.AreEqual(new[] { 1, 0, 0 }, bucketOf);
    }

    [TestMethod]
    public void ACapAboveTheModelGivesOneBucket()
    {
        var (buckets, bucketOf) = OverlappedReducer.AssignBuckets(new long[] { 2, 3, 4 }, bucketElements: 1000);

        CollectionAssert.AreEqual(new[] { (0L, 9L + 1) }, buckets);
        CollectionAssert.AreEqual(new[] { 0, 0, 0 }, bucketOf);
    }
}
